"""A file where a folder is expected, the reverse, and a path that does not exist: each is named
as such in one line with the fix and exit status 2 (the contract of ``tests/test_bad_input.py``),
never as a failed download, a missing ``config.json`` or "File exists".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ganforge import api
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import DATASETS
from ganforge.data.base import NO_ROOT, DataRoot, check_root, root_declaration
from ganforge.errors import CheckpointError, DataError, GanforgeError
from ganforge.fileio import atomic_path, ensure_dir, file_in_the_way
from ganforge.run.folder import RunFolder
from ganforge.run.layout import check_run_folder
from tests.reporting.test_compare import fake_run
from tests.test_bad_input import refused, sets, train_argv

MNIST_WANTS = "--data-root (data.root) for mnist wants the folder that holds the mnist files"
FOLDER_WANTS = ("--data-root (data.root) for image-folder wants the folder of your images "
                "(class subfolders give labels)")
ARRAYS_WANTS = ("--data-root (data.root) for arrays wants an .npz file made with "
                "np.savez(path, x=x, y=y), or a folder holding x.npy")
RUN_WANTS = "pass the folder `ganforge train` made"


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "some.png"
    path.write_bytes(b"not a folder")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-step conditional run with a checkpoint, for the commands that load one."""
    out = tmp_path_factory.mktemp("bad-paths") / "run"
    assert main(train_argv(out, "cgan-digits", 1)) == 0
    return out


def data_argv(out: Path, root: Path, *overrides: str) -> list[str]:
    return ["train", "--preset", "dcgan-mnist", "--out", str(out), "--data-root", str(root),
            *sets("train.steps=1", "train.device=cpu", "log.progress=false", *overrides)]


# ---------------------------------------------------------------------------------------------
# --data-root: what each dataset declares it reads
# ---------------------------------------------------------------------------------------------

def test_data_root_that_is_a_file(capsys, tmp_path, a_file):
    out = tmp_path / "run"
    line = refused(capsys, data_argv(out, a_file), f"'{a_file}' is a file; {MNIST_WANTS}",
                   watch=out)
    assert "download" not in line


def test_data_root_below_a_file_names_the_file(capsys, tmp_path, a_file):
    out = tmp_path / "run"
    refused(capsys, data_argv(out, a_file / "data"), f"'{a_file}' is a file; {MNIST_WANTS}",
            watch=out)


def test_missing_data_root_while_offline(capsys, tmp_path):
    out, root = tmp_path / "run", tmp_path / "nowhere"
    refused(capsys, data_argv(out, root, "data.download=false"),
            f"'{root}' does not exist; {MNIST_WANTS}, or set data.download=true to download "
            "them there", watch=out)


def test_image_folder_that_is_a_file(capsys, tmp_path, a_file):
    out = tmp_path / "run"
    refused(capsys, data_argv(out, a_file, "data.name=image-folder"),
            f"'{a_file}' is a file; {FOLDER_WANTS}", watch=out)


def test_arrays_given_a_folder_without_arrays(capsys, tmp_path):
    out, root = tmp_path / "run", tmp_path / "arrays"
    root.mkdir()
    refused(capsys, data_argv(out, root, "data.name=arrays"),
            f"'{root}' is a folder with no x.npy; {ARRAYS_WANTS}", watch=out)


def test_arrays_that_do_not_exist(capsys, tmp_path):
    out, root = tmp_path / "run", tmp_path / "mine.npz"
    refused(capsys, data_argv(out, root, "data.name=arrays"),
            f"'{root}' does not exist; {ARRAYS_WANTS}", watch=out)


def test_arrays_take_an_npz_file(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((4, 2), np.float32))
    check_root(DataConfig(name="arrays", root=str(path)))  # a file is what arrays reads


def test_datasets_without_a_root_ignore_it(a_file):
    for name in ("digits", "synthetic", "toy-2d"):
        assert root_declaration(name) is NO_ROOT
        check_root(DataConfig(name=name, root=str(a_file)))


def test_every_dataset_declares_its_root():
    declared = {name: root_declaration(name) for name in DATASETS
                if not DATASETS.origin(name)}  # ganforge's own, not installed plugins
    assert all(isinstance(d, DataRoot) for d in declared.values())
    assert sorted(n for n, d in declared.items() if not d.downloads) == [
        "arrays", "digits", "image-folder", "synthetic", "toy-2d"]
    assert [n for n, d in declared.items() if d.file] == ["arrays"]
    assert declared["stacked-mnist"].wants == "the folder that holds the MNIST files"


def test_a_missing_root_is_fine_when_it_will_be_downloaded(tmp_path):
    check_root(DataConfig(name="mnist", root=str(tmp_path / "new"), download=True))
    with pytest.raises(DataError, match="does not exist"):
        check_root(DataConfig(name="mnist", root=str(tmp_path / "new"), download=False))


# ---------------------------------------------------------------------------------------------
# --out: a file where the output folder should be, a folder where the file should be
# ---------------------------------------------------------------------------------------------

def test_train_out_is_a_file(capsys, tmp_path, a_file):
    refused(capsys, train_argv(a_file), f"'{a_file}' is a file, not a folder; choose another "
            "--out", watch=tmp_path)


def test_train_out_below_a_file(capsys, tmp_path, a_file):
    refused(capsys, train_argv(a_file / "run"), f"'{a_file}' is a file, not a folder; choose "
            "another --out", watch=tmp_path)


@pytest.mark.parametrize("fmt", ["torchscript", "hub"])
def test_export_out_below_a_file(fmt, trained, capsys, tmp_path, a_file):
    refused(capsys, ["export", str(trained), "--format", fmt, "--out", str(a_file / "g.pt")],
            f"'{a_file}' is a file, not a folder; choose another --out", watch=tmp_path)


def test_compare_out_below_a_file_and_onto_a_folder(capsys, tmp_path, a_file):
    runs = [str(fake_run(tmp_path / name, [], [1.0])) for name in ("a", "b")]
    refused(capsys, ["compare", *runs, "--out", str(a_file / "page.html")],
            f"'{a_file}' is a file, not a folder; choose another --out")
    folder = tmp_path / "page"
    folder.mkdir()
    refused(capsys, ["compare", *runs, "--out", str(folder)],
            f"'{folder}' is a folder, not a file; choose another --out (a file name)",
            watch=folder)


def test_writers_name_the_file_in_the_way(tmp_path, a_file):
    assert file_in_the_way(a_file / "x" / "y") == a_file
    assert file_in_the_way(a_file) == a_file
    assert file_in_the_way(tmp_path / "free" / "x") is None
    with pytest.raises(GanforgeError, match=re.escape(f"'{a_file}' is a file, not a folder; "
                                                      "choose another --out")):
        with atomic_path(a_file / "deep" / "f.json") as tmp:
            tmp.write_text("{}")
    for folder in (a_file, a_file / "sub"):
        with pytest.raises(GanforgeError, match=re.escape(f"'{a_file}' is a file, not a folder")):
            ensure_dir(folder)
    assert a_file.read_bytes() == b"not a folder"


# ---------------------------------------------------------------------------------------------
# Run folders: a file or a missing path where a run folder is read
# ---------------------------------------------------------------------------------------------

RUN_COMMANDS = [
    lambda path: ["report", str(path)],
    lambda path: ["compare", str(path), str(path)],
    lambda path: ["train", "--resume", str(path)],
    lambda path: ["generate", str(path), "--out", str(path.parent / "samples.png")],
    lambda path: ["export", str(path), "--format", "hub", "--out", str(path.parent / "hub")],
]
RUN_IDS = ["report", "compare", "resume", "generate", "export"]


@pytest.mark.parametrize("argv", RUN_COMMANDS, ids=RUN_IDS)
def test_run_path_that_is_a_file(argv, capsys, tmp_path, a_file):
    refused(capsys, argv(a_file), f"'{a_file}' is a file, not a run folder; {RUN_WANTS}",
            watch=tmp_path)


def test_evaluate_a_path_that_does_not_exist(capsys, tmp_path):
    missing = tmp_path / "nope"
    refused(capsys, ["evaluate", str(missing), "--metrics", "fid", "--dataset", "digits"],
            f"'{missing}' does not exist; pass a run folder, an npz made by `ganforge generate "
            "--format npz` or a folder of images", watch=tmp_path)


@pytest.mark.parametrize("argv", RUN_COMMANDS, ids=RUN_IDS)
def test_run_path_that_does_not_exist(argv, capsys, tmp_path):
    missing = tmp_path / "runs" / "nope"
    refused(capsys, argv(missing), f"'{missing}' does not exist; {RUN_WANTS}", watch=tmp_path)


def test_python_readers_check_the_run_folder(tmp_path, a_file):
    for read in (api.load_config, api.load_run, RunFolder.read, check_run_folder):
        with pytest.raises(CheckpointError, match=re.escape(f"'{a_file}' is a file, not a run")):
            read(a_file)
        with pytest.raises(CheckpointError, match="does not exist"):
            read(tmp_path / "nope")
    assert check_run_folder(str(tmp_path)) == tmp_path
