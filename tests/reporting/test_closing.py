"""The lines ``ganforge train`` ends with: scores that say which model they measured, and "next:"
commands built from what the run supports — each one run here exactly as printed, after
training one small run of every model family."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge import api
from ganforge.cli import build_parser, main
from ganforge.metrics import METRICS
from ganforge.reporting.closing import (INDENT, SUGGESTED_METRICS, closing_summary, example_row,
                                        metric_lines)
from ganforge.run.export import missing_modules
from ganforge.run.folder import RunFolder
from tests.conftest import fast_overrides


# ---------------------------------------------------------------------------------------------
# Scores say which model they measured
# ---------------------------------------------------------------------------------------------

def scored_folder(root: Path, results: list[dict], steps: tuple[int, ...] = (800, 1200),
                  summary_steps: int | None = None) -> RunFolder:
    """A run folder holding just what the score lines read: checkpoint names, metrics.json and
    (optionally) summary.json."""
    (root / "checkpoints").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    for step in steps:
        (root / "checkpoints" / f"step_{step:09d}.json").write_text("{}")
    if summary_steps is not None:
        (root / "summary.json").write_text(json.dumps({"steps": summary_steps}))
    (root / "metrics.json").write_text(json.dumps({"source": str(root), "results": results}))
    return RunFolder.read(root)


def result(name: str, value: float, model: dict | None) -> dict:
    return {"name": name, "value": value, "details": {}, "protocol": {},
            **({"model": model} if model is not None else {})}


def test_scores_name_their_model_and_earlier_ones_come_last(tmp_path):
    folder = scored_folder(tmp_path / "run", [
        result("fid10k_old", 9.5, {"step": 800, "ema": True, "checkpoint": "best"}),
        result("kid10k_x", 0.25, None),
        result("fid10k_x", 3.125, {"step": 1200, "ema": True, "checkpoint": "step_000001200"}),
        result("pr10k_x", 0.5, {"step": 1200, "ema": False, "checkpoint": "step_000001200"}),
    ])
    assert metric_lines(folder) == [
        "metric:     fid10k_x = 3.125 (step 1200, EMA G)",
        "metric:     pr10k_x = 0.5 (step 1200, G)",
        "metric:     fid10k_old = 9.5 (step 800, an earlier model: the run is now at step 1200)",
        "metric:     kid10k_x = 0.25 (step unknown)",
    ]


def test_newest_step_falls_back_to_the_summary(tmp_path):
    folder = scored_folder(tmp_path / "run", [
        result("fid1k_x", 4.0, {"step": 30, "ema": False, "checkpoint": "step_000000030"}),
        result("acc1k_x", 0.75, {"step": 40, "ema": False, "checkpoint": "step_000000040"})],
        steps=(), summary_steps=40)
    assert metric_lines(folder) == [
        "metric:     acc1k_x = 0.75 (step 40, G)",
        "metric:     fid1k_x = 4 (step 30, an earlier model: the run is now at step 40)"]
    # Without a model record there is nothing to build commands from: no "next:" at all.
    assert closing_summary(tmp_path / "run").splitlines() == [
        f"run folder: {tmp_path / 'run'}", *metric_lines(folder)]


def test_example_condition_row():
    assert example_row({"n_classes": 3, "scaling": None}) == [1.0, 0.0, 0.0]
    scaled = {"n_classes": 2, "scaling": {"x": None, "y": {
        "kind": "standardize", "mean": [7.5, 0.0], "std": [2.0, 1.0]}}}
    assert example_row(scaled) == [7.5, 0.0]


def test_suggested_metrics_are_registered():
    assert set(SUGGESTED_METRICS) <= set(METRICS.names())


# ---------------------------------------------------------------------------------------------
# Every "next:" hint runs as printed, for every model family
# ---------------------------------------------------------------------------------------------

SMALL = ["eval.final_samples=100"]  # evaluate's hint scores as many samples as eval.final would
MLP = ["model.g_hidden=[16]", "model.d_hidden=[16]"]
CONV = ["model.g_width=8", "model.d_width=8"]


def mnist(root: Path) -> list[str]:
    return [f'data.root="{root}"', "data.split=test", "data.download=false", "data.limit=64"]


def vectors_npz(tmp_path: Path) -> Path:
    """(N, D) float vectors without a test split (so scores read the training split)."""
    path = tmp_path / "vectors.npz"
    np.savez(path, x=np.random.default_rng(0).normal(3.0, 2.0, (200, 3)).astype(np.float32))
    return path


def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png")
    return folder


# family -> (preset, overrides(tmp_path, mnist_root), needs MNIST, the metrics evaluate is
# given, the names they are saved under)
FAMILIES = {
    "mlp": ("cgan-digits", lambda tmp, mn: MLP, False, "fid,kid,pr,label-acc",
            ["acc100_digits-lenet", "fid100_digits-lenet", "kid100_digits-lenet",
             "pr100_digits-lenet"]),
    "dcgan": ("dcgan-mnist", lambda tmp, mn: CONV + mnist(mn), True, "parzen",
              ["parzen100_mnist"]),
    "acgan": ("acgan-mnist", lambda tmp, mn: CONV + mnist(mn), True, "parzen",
              ["parzen100_mnist"]),
    "ring": ("cgan-ring-angle", lambda tmp, mn: MLP + ["data.toy_samples=512"], False,
             "condition-fit,parzen", ["condfit100_ring-angle", "parzen100_ring-angle"]),
    "vectors": ("gan-mnist", lambda tmp, mn: MLP + [
        "data.name=arrays", f'data.root="{vectors_npz(tmp)}"'], False, "parzen",
        ["parzen100_arrays"]),
    "folder": ("dcgan-folder64", lambda tmp, mn: CONV + [
        f'data.root="{image_folder(tmp)}"', "data.image_size=16", "log.trackers=[]"], False,
        "parzen", ["parzen100_image-folder"]),
}


def expected_hints(family: str, run: Path) -> list[str]:
    """What the run supports: its kind of condition, data, evaluators here, trackers."""
    how = {"mlp": "--per-class 3", "acgan": "--per-class 3", "ring": "--condition 1,0 --n 9"}
    fmt = "onnx" if not missing_modules("onnx") else "torchscript"
    hints = [f"ganforge generate {run} {how.get(family, '--n 9')} --out {family}-samples.png",
             f"ganforge evaluate {run} --metrics {FAMILIES[family][3]} --n 100"
             + (" --split train" if family == "vectors" else ""),
             f"ganforge export {run} --format {fmt} --out {family}."
             + ("onnx" if fmt == "onnx" else "pt")]
    return hints + ([] if family == "folder" else [f"tensorboard --logdir {run.parent}"])


def printed_hints(summary: str) -> list[str]:
    """The "next:" command and the indented ones under it."""
    lines = summary.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("next:"))
    hints = [lines[start][len("next:"):].strip()]
    for line in lines[start + 1:]:
        if not line.startswith(INDENT):
            break
        hints.append(line.strip())
    return hints


def tensorboard_digest(argv: list[str]) -> str:
    """``tensorboard --logdir DIR`` proven without a server: ``--inspect`` prints the tags of
    the event files it finds under DIR (exit status 0 even when it finds none)."""
    exe = Path(sys.executable).with_name("tensorboard")
    exe = str(exe) if exe.is_file() else shutil.which("tensorboard")
    proc = subprocess.run([exe, "--inspect", *argv[1:]], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_next_hint_runs_as_printed(family, request, tmp_path, monkeypatch, capsys):
    preset, overrides, needs_mnist, _, saved = FAMILIES[family]
    mnist_root = request.getfixturevalue("mnist_root") if needs_mnist else None
    monkeypatch.chdir(tmp_path)  # the hints write beside the user, into the current folder
    # Only the evaluators that ship with ganforge, and no Inception weights: a machine as a
    # user's first run finds it.
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    run = tmp_path / "runs" / family
    argv = ["train", "--preset", preset, "--out", str(run)]
    for o in fast_overrides(2) + SMALL + overrides(tmp_path, mnist_root):
        argv += ["--set", o]
    assert main(argv) == 0
    summary = capsys.readouterr().out
    hints = printed_hints(summary)
    assert hints == expected_hints(family, run)
    notes = [line for line in summary.splitlines() if line.startswith("evaluator:")]
    if family in ("dcgan", "acgan", "folder"):  # images, and no evaluator of them here
        data, root = ("mnist", mnist_root) if needs_mnist else ("image-folder",
                                                                tmp_path / "pictures")
        train = f"ganforge train-evaluator --dataset {data} --data-root {root}"
        assert notes == [f"evaluator:  none of {data} images here (looked for {data}-lenet), so "
                         f"no FID, KID or PR: train one with `{train}` (labelled images), or "
                         "get the Inception weights and pass --evaluator inception"]
        args = build_parser().parse_args(shlex.split(train)[1:])  # a command line that parses
        assert (args.dataset, args.data_root) == (data, str(root))
    else:
        assert notes == []

    for hint in hints:
        argv = shlex.split(hint)
        if argv[0] == "ganforge":
            assert main(argv[1:]) == 0, capsys.readouterr().err
        else:
            digest = tensorboard_digest(argv)
            assert f"Found event files in:\n{run / 'tb'}\n" in digest and "Loss/D\n" in digest
    capsys.readouterr()
    assert (tmp_path / f"{family}-samples.png").is_file()
    assert (tmp_path / hints[2].split()[-1]).stat().st_size > 0
    results = json.loads((run / "metrics.json").read_text())["results"]
    assert sorted(r["name"] for r in results) == saved
    # The scores now show in the summary, each naming the model it measured.
    ema = "EMA G" if api.load_run(run).uses_ema else "G"
    assert [line for line in closing_summary(run).splitlines() if line.startswith("metric:")] \
        == [f"metric:     {name} = {r['value']:.4g} ({score_notes(r, f'step 2, {ema}')})"
            for name, r in sorted((r["name"], r) for r in results)]


def score_notes(result: dict, model: str) -> str:
    """What a score line says after its value: the model, then a label accuracy's worst class
    and how often its two evaluators disagree."""
    details = result["details"]
    notes = [model]
    if details.get("worst_class_acc") is not None:
        notes.append(f"worst class {details['worst_class_acc']:.3f}")
        if details.get("disagreement") is not None:
            notes.append(f"evaluators disagree on {details['disagreement']:.1%}")
    return "; ".join(notes)
