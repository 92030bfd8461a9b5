"""``ganforge generate``: --condition checked against the run's kind of condition, the npz's one
label per sample, and an existing --out refused unless --force (or the wrong kind of thing).

Every refusal follows tests/test_bad_input.py: exit status 2, one line on stderr naming the
problem and the fix, no traceback, and nothing written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import api
from ganforge.cli import main
from ganforge.errors import GanforgeError
from tests.test_bad_input import refused, tree
from tests.training.step.test_loop import preset_on_generated_data

CLASSES = "this run is conditioned on classes 0..9; pass --class N / --per-class, or an (N,) " \
          "integer array"
ROWS = "this run is conditioned on 2-column rows (cos, sin): pass an (N, 2) array, or one (2,) row"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three kinds of condition: classes (cgan-digits, 0..9), 2-column rows (cgan-ring-angle:
    cos, sin) and none (gan-mnist); two steps each on generated data."""
    root = tmp_path_factory.mktemp("generate-runs")
    out = {}
    for kind, preset in (("classes", "cgan-digits"), ("rows", "cgan-ring-angle"),
                         ("none", "gan-mnist")):
        api.train(preset, overrides=preset_on_generated_data(preset) + ["log.trackers=[]"],
                  out=str(root / kind), log=lambda m: None)
        out[kind] = root / kind
    return out


def npy(folder: Path, name: str, array: np.ndarray) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, array)
    return str(folder / name)


def generate(*argv: str) -> list[str]:
    return ["generate", *argv]


# ---------------------------------------------------------------------------------------------
# --condition against the run's kind of condition
# ---------------------------------------------------------------------------------------------

# (run, the --condition array or text, extra flags, the error line after "ganforge: error: ")
CONDITION_CASES = {
    "float rows on classes": (
        "classes", np.full((10, 2), 0.5, np.float32), [],
        f"--condition '{{path}}': shape (10, 2), not (N,) class indices; {CLASSES}"),
    "fractional classes": (
        "classes", np.array([0.0, 0.25, 3.0]), [],
        f"--condition '{{path}}': 0.25 is not a class index; {CLASSES}"),
    "fractional classes written out": (
        "classes", "2.5", [], f"--condition '2.5': 2.5 is not a class index; {CLASSES}"),
    "NaN class": (
        "classes", np.array([1.0, np.nan]), [],
        f"--condition '{{path}}': nan is not a class index; {CLASSES}"),
    "true/false classes": (
        "classes", np.array([True, False]), [],
        f"--condition '{{path}}': true/false values, not class indices; {CLASSES}"),
    "no class": (
        "classes", np.zeros(0, np.int64), [], f"--condition '{{path}}': no class index; {CLASSES}"),
    "class out of range": (
        "classes", np.array([0, 12]), [], "class 12 is out of range; this model has classes 0..9"),
    "classes and --n": (
        "classes", np.array([1, 2]), ["--n", "4"],
        "--condition '{path}' gives one sample per class index; drop --n"),
    "classes and --per-class": (
        "classes", np.array([1, 2]), ["--per-class", "2"],
        "--condition gives each sample's condition itself; drop --class / --per-class"),
    "three columns for two": (
        "rows", np.zeros((4, 3), np.float32), [], f"--condition '{{path}}': shape (4, 3); {ROWS}"),
    "one row of three for two": (
        "rows", "1,0,0", [], f"--condition '1,0,0': shape (3,); {ROWS}"),
    "a 3-d array": (
        "rows", np.zeros((2, 2, 2)), [],
        "condition rows '{path}' must be a (N,), (N, K) or (K,) array, got (2, 2, 2); save one "
        "array with np.save"),
    "infinite rows": (
        "rows", np.array([[1.0, np.inf]]), [],
        "--condition '{path}': NaN or infinite values; pass finite numbers"),
    "no rows": ("rows", np.zeros((0, 2)), [], f"--condition '{{path}}': no row; {ROWS}"),
    "rows and --n": (
        "rows", np.zeros((3, 2)), ["--n", "5"],
        "--n repeats one (2,) row, and --condition '{path}' holds 3 rows (one sample each); "
        "drop --n"),
    "rows model without rows": (
        "rows", None, ["--n", "5"],
        "run '{run}' is conditioned on 2-column condition rows (cos, sin); pass them with "
        "--condition FILE.npy (an (N, 2) array) or --condition with one row of 2 "
        "comma-separated values (repeated --n times)"),
    "unconditional with rows": (
        "none", np.zeros((3, 2)), [],
        "run '{run}' is unconditional and takes no --condition; drop it and use --n"),
    "a pickled array (never unpickled)": (
        "classes", np.array([{"a": 1}, None], dtype=object), [],
        "cannot read condition rows '{path}' (Object arrays cannot be loaded when "
        "allow_pickle=False); pass an .npy file saved with np.save, or one row of numbers such "
        "as --condition 1,0"),
    "unreadable file": (
        "classes", "missing.npy", [],
        "cannot read condition rows 'missing.npy' ([Errno 2] No such file or directory: "
        "'missing.npy'); pass an .npy file saved with np.save, or one row of numbers such as "
        "--condition 1,0"),
}


@pytest.mark.parametrize("case", list(CONDITION_CASES))
def test_condition_of_another_kind_is_refused(case, runs, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "missing.npy" is looked for here
    kind, given, extra, message = CONDITION_CASES[case]
    path = npy(tmp_path / "in", "rows.npy", given) if isinstance(given, np.ndarray) else given
    out = tmp_path / "out"
    argv = generate(str(runs[kind]), *extra, "--format", "npz", "--out", str(out / "s.npz"))
    if path is not None:
        argv += ["--condition", path]
    err = refused(capsys, argv, "", watch=out)
    assert err == "ganforge: error: " + message.format(path=path, run=runs[kind])


def test_api_refuses_fractional_class_labels(runs):
    """``Run.generate`` never floors a float label to a class (0.5 would be class 0)."""
    run = api.load_run(runs["classes"])
    with pytest.raises(GanforgeError) as info:
        run.generate(labels=[0.5, 1.2])
    assert str(info.value) == f"labels: 0.5 is not a class index; {CLASSES}"
    with pytest.raises(GanforgeError, match=r"^labels: shape \(2, 2\), not \(N,\) class "):
        run.generate(labels=torch.rand(2, 2))
    whole = run.generate(labels=[2.0, 5.0], seed=3)  # whole numbers in a float dtype are classes
    assert torch.equal(whole, run.generate(labels=torch.tensor([2, 5]), seed=3))


# ---------------------------------------------------------------------------------------------
# The npz holds one label per sample
# ---------------------------------------------------------------------------------------------

# (run, --condition array or text, extra flags, labels the npz must hold)
LABELLED_CASES = {
    "class indices": ("classes", np.array([3, 3, 7]), [], [3, 3, 7]),
    "whole-number floats as an (N, 1) column": (
        "classes", np.array([[1.0], [9.0]]), [], [1, 9]),
    "class indices written out": ("classes", "4,0", [], [4, 0]),
    "one row repeated --n times": ("rows", "1,0", ["--n", "4"], [[1.0, 0.0]] * 4),
    "one row from a file, once": ("rows", np.array([0.0, -1.0]), [], [[0.0, -1.0]]),
    "a row per sample": ("rows", np.array([[1, 0], [0, 1], [-1, 0]]), [],
                         [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
}


@pytest.mark.parametrize("case", list(LABELLED_CASES))
def test_npz_has_one_label_per_sample(case, runs, capsys, tmp_path):
    kind, given, extra, labels = LABELLED_CASES[case]
    path = npy(tmp_path, "rows.npy", given) if isinstance(given, np.ndarray) else given
    out = tmp_path / "s.npz"
    argv = generate(str(runs[kind]), "--condition", path, *extra, "--format", "npz", "--out",
                    str(out))
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out == f"wrote {len(labels)} samples to {out}\n"
    with np.load(out) as npz:
        samples = npz["images" if kind == "classes" else "points"]
        assert len(samples) == len(npz["labels"]) == len(labels)
        assert npz["labels"].dtype == (np.int64 if kind == "classes" else np.float32)
        assert npz["labels"].tolist() == labels


# ---------------------------------------------------------------------------------------------
# --out: never overwritten without --force, and the right kind of thing
# ---------------------------------------------------------------------------------------------

def test_existing_files_need_force(runs, capsys, tmp_path):
    for name, fmt, held in (("grid.png", "png", b"keep me"), ("s.npz", "npz", b"keep me"),
                            ("empty.png", "png", b"")):  # an empty file is the user's too
        target = tmp_path / name
        target.write_bytes(held)
        argv = generate(str(runs["classes"]), "--n", "4", "--format", fmt, "--out", str(target))
        err = refused(capsys, argv, "", watch=tmp_path)
        assert err == (f"ganforge: error: --out '{target}' already exists; choose another path, "
                       "delete it or pass --force")
        assert main(argv + ["--force"]) == 0
        assert target.read_bytes() != held and target.stat().st_size > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "grid.png", "s.npz"]


def test_existing_folder_needs_force_and_holds_only_new_samples(runs, capsys, tmp_path):
    folder = tmp_path / "samples"
    argv = generate(str(runs["none"]), "--n", "5", "--out", str(folder))
    assert main(argv) == 0
    err = refused(capsys, generate(str(runs["none"]), "--n", "2", "--out", str(folder)), "",
                  watch=tmp_path)
    assert err == (f"ganforge: error: --out '{folder}' exists and is not empty; choose a new "
                   "folder, delete it or pass --force")
    assert main(generate(str(runs["none"]), "--n", "2", "--out", str(folder), "--force")) == 0
    # Replaced, not added to: no sample of the earlier call is left beside the new ones.
    assert sorted(p.name for p in folder.iterdir()) == ["sample_000000.png", "sample_000001.png"]
    (folder / "notes.txt").write_text("mine")
    err = refused(capsys, argv + ["--force"], "", watch=tmp_path)
    assert err == (f"ganforge: error: --out '{folder}' holds files that generate did not write "
                   "('notes.txt'); --force replaces only a folder of sample_*.png: choose a "
                   "new folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]  # no temporary folder


# (what is there before: (file or folder, its name) or None; flags; the error line after
# "ganforge: error: ")
KIND_CASES = {
    "a file where the sample folder goes": (
        ("file", "made"), ["--n", "3", "--out", "{tmp}/made"],
        "'{tmp}/made' is a file, not a folder; one PNG per sample goes into a folder: pass a "
        "new folder, or PATH.png for one grid"),
    "a file among the parents": (
        ("file", "made"), ["--n", "3", "--out", "{tmp}/made/grid.png"],
        "'{tmp}/made' is a file, not a folder; choose another --out"),
    "a folder of other files where the samples go": (
        ("folder", "made"), ["--n", "3", "--out", "{tmp}/made"],
        "--out '{tmp}/made' exists and is not empty; choose a new folder, delete it or pass "
        "--force"),
    "a folder where the png goes": (
        ("folder", "made.png"), ["--n", "3", "--out", "{tmp}/made.png"],
        "'{tmp}/made.png' is a folder, not a file; pass a file path such as "
        "{tmp}/made.png/samples.png"),
    "a folder where the npz goes": (
        ("folder", "made"), ["--n", "3", "--format", "npz", "--out", "{tmp}/made"],
        "'{tmp}/made' is a folder, not a file; pass a file path such as {tmp}/made/samples.npz"),
    "an npz name for PNGs": (
        None, ["--n", "3", "--out", "{tmp}/s.npz"],
        "--out '{tmp}/s.npz' names an npz file; add --format npz (PNG output is PATH.png for a "
        "grid or a folder for one file per sample)"),
    "a png name for an npz": (
        None, ["--n", "3", "--format", "npz", "--out", "{tmp}/s.png"],
        "--format npz writes an npz file, not '{tmp}/s.png'; name it {tmp}/s.npz (or drop "
        "--format for a PNG)"),
}


@pytest.mark.parametrize("case", list(KIND_CASES))
def test_out_of_the_wrong_kind_is_named(case, runs, capsys, tmp_path):
    before, flags, message = KIND_CASES[case]
    if before is not None and before[0] == "file":
        (tmp_path / before[1]).write_text("a file")
    elif before is not None:
        (tmp_path / before[1]).mkdir()
        (tmp_path / before[1] / "keep.txt").write_text("mine")
    argv = generate(str(runs["classes"]), *[f.format(tmp=tmp_path) for f in flags])
    snapshot = tree(tmp_path)
    err = refused(capsys, argv, "")
    assert err == "ganforge: error: " + message.format(tmp=tmp_path)
    assert tree(tmp_path) == snapshot  # nothing written, nothing replaced
    assert [p.name for p in tmp_path.iterdir()] == ([] if before is None else [before[1]])
