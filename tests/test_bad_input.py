"""Bad input through the command line: each is refused with exit status 2 and exactly one line
on stderr naming the problem and the fix, no traceback, and no half-written output — no run
folder left behind, or the existing one byte-for-byte unchanged.

A few inputs are handled rather than refused (unreadable images skipped with a count, mixed
grayscale/RGB folders converted to RGB); those tests check what the run did with them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.reporting import read_jsonl
from ganforge.run import checkpoint as ckpt
from tests.training.step.test_loop import preset_on_generated_data


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with the SHA-256 of its bytes."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def refused(capsys, argv: list[str], message: str, watch: Path | None = None) -> str:
    """Run the CLI, assert the refusal contract and return the error line.

    Args:
        watch: a folder that must be exactly as before (or still absent).
    """
    before = tree(watch) if watch is not None else None
    existed = watch is not None and watch.exists()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refuses before main's handler
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("ganforge: error: "), err
    assert message in err, err
    assert "Traceback" not in out + err
    if watch is not None:
        assert watch.exists() == existed, f"{watch} appeared or vanished"
        assert tree(watch) == before
    return err.strip()


def train_argv(out: Path, preset: str = "gan-mnist", steps: int = 2, *extra: str) -> list[str]:
    argv = ["train", "--preset", preset, "--out", str(out)]
    for o in preset_on_generated_data(preset, steps) + ["log.tensorboard=false"]:
        argv += ["--set", o]
    return argv + list(extra)


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A conditional run of 4 steps (checkpoints at 3 and 4), copied per test by ``run``."""
    out = tmp_path_factory.mktemp("bad-input") / "run"
    assert main(train_argv(out, "cgan-digits", 4)) == 0
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def write_images(folder: Path, n: int = 6, mode: str = "L") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (12, 12) if mode == "L" else (12, 12, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
            folder / f"img{i}.png")


def folder_argv(out: Path, folder: Path, *extra: str) -> list[str]:
    return ["train", "--preset", "gan-mnist", "--out", str(out), "--data-root", str(folder),
            *sets("data.name=image-folder", "data.image_size=8", "train.steps=2",
                  "train.batch_size=4", "train.device=cpu", "log.progress=false",
                  "log.tensorboard=false", "log.sample_every=1", "log.checkpoint_every=1",
                  "log.grid_samples=4", *extra)]


# ---------------------------------------------------------------------------------------------
# Config: unknown keys, wrong types, out-of-range values, impossible combinations
# ---------------------------------------------------------------------------------------------

CONFIG_CASES = [
    # (overrides, message)
    (["optim.lr_gg=1e-4"], "unknown config key 'optim.lr_gg' (did you mean 'optim.lr_g'?)"),
    (["optimizer.lr_g=1e-4"], "unknown config key 'optimizer"),
    (["train.batchsize=32"], "unknown config key 'train.batchsize'"),
    (["train=3"], "'train' in --set train=3 is a section"),
    (["train.batch_size=abc"], "config key 'train.batch_size' wants int, got 'abc'"),
    (["train.batch_size=6.5"], "config key 'train.batch_size' wants int, got 6.5"),
    (["model.conditional=maybe"], "config key 'model.conditional' wants bool"),
    (["model.g_hidden=[64,wide]"], "config key 'model.g_hidden[1]' wants int"),
    (["optim.lr_g=fast"], "config key 'optim.lr_g' wants float"),
    (["train.batch_size=0"], "train.batch_size=0 must be positive"),
    (["optim.lr_d=-0.1"], "optim.lr_g and optim.lr_d must be positive"),
    (["model.d_dropout=1.5"], "model.d_dropout must be in [0, 1)"),
    (["optim.betas=[0.5]"], "optim.betas must be two numbers in [0, 1)"),
    (["data.image_size=2"], "data.image_size=2 is out of range"),
    (["data.split=val"], "config key 'data.split' is 'val'; choose one of: train, test"),
    (["train.on_nonfinite=ignore"], "choose one of: stop, rollback"),
    (["train.rollback_lr_factor=2"], "train.rollback_lr_factor=2.0 must be in (0, 1]"),
    (["train.device=gpu"], "train.device='gpu'; use auto, cpu, cuda, cuda:N or mps"),
    (["model.arch=resnet"], "'resnet'"),
    (["loss.name=focal"], "'focal'"),
    (["data.name=imagenet"], "'imagenet'"),
    (["train"], "override 'train' has no '='"),
]


@pytest.mark.parametrize("overrides, message", CONFIG_CASES,
                         ids=[c[0][0] for c in CONFIG_CASES])
def test_bad_config_value(overrides, message, capsys, tmp_path):
    out = tmp_path / "run"
    refused(capsys, ["train", "--preset", "gan-mnist", "--out", str(out), *sets(*overrides)],
            message, watch=out)


def test_mistyped_key_in_config_file(capsys, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "gan-mnist"\n[optim]\nlr = 1e-4\n')
    refused(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "run")],
            "unknown config key 'optim.lr'", watch=tmp_path / "run")


def test_config_file_that_is_not_toml(capsys, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[train\nsteps = 3\n")
    refused(capsys, ["train", "--config", str(path)], "is not valid TOML", watch=tmp_path / "run")


def test_missing_config_file(capsys, tmp_path):
    refused(capsys, ["train", "--config", str(tmp_path / "nope.toml")],
            "config file '" + str(tmp_path / "nope.toml") + "' not found")


def test_unknown_preset(capsys):
    refused(capsys, ["train", "--preset", "dcgan-mnsit", "--dry-run"],
            "unknown preset 'dcgan-mnsit' (did you mean 'dcgan-mnist'?); valid presets:")


def test_bad_time_budget(capsys):
    refused(capsys, ["train", "--preset", "gan-mnist", "--time-budget", "soon", "--dry-run"],
            "time budget 'soon' is not a duration; write e.g. 30s, 5m or 2h")


def test_bad_flag_value_is_one_line(capsys):
    refused(capsys, ["train", "--preset", "gan-mnist", "--steps", "many"],
            "argument --steps: invalid int value: 'many'; see `ganforge train --help`")


def test_no_budget_leaves_no_run_folder(capsys, tmp_path):
    out = tmp_path / "run"
    argv = train_argv(out) + sets("train.steps=none")
    refused(capsys, argv, "no training budget; set train.steps", watch=out)


def test_image_size_the_architecture_cannot_make(capsys, tmp_path):
    out = tmp_path / "run"
    argv = train_argv(out, "dcgan-mnist") + sets("data.image_size=30")
    refused(capsys, argv, "model dcgan cannot make 30x30 images; use 28, 32 or 64", watch=out)


def test_convolutional_model_on_vector_data(capsys, tmp_path):
    out = tmp_path / "run"
    argv = train_argv(out, "gan-toy2d") + sets("model.arch=dcgan")
    refused(capsys, argv, "use model.arch=mlp", watch=out)


def test_conditional_model_on_unlabelled_data(capsys, tmp_path):
    out = tmp_path / "run"
    argv = train_argv(out, "gan-toy2d") + sets("model.conditional=true")
    refused(capsys, argv, "has no class labels; set model.conditional=false", watch=out)


def test_existing_run_folder_is_not_overwritten(run, capsys):
    refused(capsys, train_argv(run), "already exists and is not empty; pass --resume", watch=run)


# ---------------------------------------------------------------------------------------------
# Data: unreadable files, mixed channels, empty or missing folders, offline datasets
# ---------------------------------------------------------------------------------------------

def _corrupt(folder: Path) -> None:
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")


def _truncated(folder: Path) -> None:
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(folder / "cut.jpg", quality=95)
    data = (folder / "cut.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])


def _not_an_image(folder: Path) -> None:
    (folder / "notes.txt").write_text("these are my notes, not a picture\n")


@pytest.mark.parametrize("spoil", [_corrupt, _truncated, _not_an_image],
                         ids=["corrupt", "truncated", "not-an-image"])
def test_unreadable_file_refused_when_bad_files_is_error(spoil, capsys, tmp_path):
    folder, out = tmp_path / "images", tmp_path / "run"
    write_images(folder)
    spoil(folder)
    refused(capsys, folder_argv(out, folder, "data.bad_files=error"),
            "is not a readable image", watch=out)


def test_unreadable_files_skipped_with_a_count(capsys, tmp_path):
    folder, out = tmp_path / "images", tmp_path / "run"
    write_images(folder)
    for spoil in (_corrupt, _truncated, _not_an_image):
        spoil(folder)
    assert main(folder_argv(out, folder)) == 0
    printed = capsys.readouterr().out
    assert "skipped 3 unreadable files in the data (data.bad_files=error refuses them)" in printed
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_mixed_grayscale_and_rgb_become_rgb(capsys, tmp_path):
    folder, out = tmp_path / "images", tmp_path / "run"
    write_images(folder, 4, "L")
    for i in range(3):
        Image.fromarray(np.full((10, 10, 3), 40 * i, np.uint8)).save(folder / f"rgb{i}.png")
    assert main(folder_argv(out, folder)) == 0
    assert json.loads((out / "model.json").read_text())["data_shape"] == [3, 8, 8]


def test_mixed_folder_with_impossible_channel_count(capsys, tmp_path):
    folder, out = tmp_path / "images", tmp_path / "run"
    write_images(folder, 3, "L")
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / "colour.png")
    refused(capsys, folder_argv(out, folder, "data.channels=2"),
            "data.channels=2; use 1, 3 or none", watch=out)


def test_empty_image_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    refused(capsys, folder_argv(out, tmp_path / "empty"), "has no files; put images", watch=out)


def test_folder_of_only_unreadable_files(capsys, tmp_path):
    folder, out = tmp_path / "images", tmp_path / "run"
    folder.mkdir()
    _corrupt(folder)
    _not_an_image(folder)
    refused(capsys, folder_argv(out, folder), "none of the 2 files", watch=out)


def test_missing_image_folder(capsys, tmp_path):
    out = tmp_path / "run"
    refused(capsys, folder_argv(out, tmp_path / "nowhere"), f"'{tmp_path / 'nowhere'}' does not "
            "exist; --data-root (data.root) for image-folder wants the folder of your images",
            watch=out)


def test_missing_dataset_while_offline(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    out = tmp_path / "run"
    argv = ["train", "--preset", "gan-mnist", "--out", str(out), "--data-root",
            str(tmp_path / "data"), *sets("data.download=false", "train.steps=1")]
    refused(capsys, argv, "mnist train split not found: put ", watch=out)


# ---------------------------------------------------------------------------------------------
# Runs and checkpoints
# ---------------------------------------------------------------------------------------------

def test_generate_class_out_of_range(run, capsys, tmp_path):
    out = tmp_path / "grid.png"
    refused(capsys, ["generate", str(run), "--class", "10", "--out", str(out)],
            "class 10 is out of range; this model has classes 0..9")
    assert not out.exists()


def test_generate_negative_class(run, capsys, tmp_path):
    refused(capsys, ["generate", str(run), "--class", "-1", "--out", str(tmp_path / "g.png")],
            "class -1 is out of range")
    assert not (tmp_path / "g.png").exists()


def test_generate_zero_samples(run, capsys, tmp_path):
    refused(capsys, ["generate", str(run), "--n", "0", "--out", str(tmp_path / "g.png")],
            "--n must be positive")


def test_generate_best_without_one(run, capsys, tmp_path):
    refused(capsys, ["generate", str(run), "--checkpoint", "best", "--out",
                     str(tmp_path / "g.png")], "has no best checkpoint; train with eval.every")


def test_generate_from_a_folder_that_is_not_a_run(capsys, tmp_path):
    refused(capsys, ["generate", str(tmp_path), "--out", str(tmp_path / "g.png")],
            "no checkpoint in")


def test_checkpoint_of_another_model_for_generate(run, capsys, tmp_path):
    newest = ckpt.list_checkpoints(run)[-1]
    meta = json.loads(newest.read_text())
    meta["model"]["model_args"]["generator"]["hidden"] = [7]  # claims another G
    newest.write_text(json.dumps(meta))
    refused(capsys, ["generate", str(run), "--checkpoint", str(newest), "--out",
                     str(tmp_path / "g.png")], "the file is from another model")


def test_checkpoint_of_another_model_for_resume(run, capsys, tmp_path):
    other = tmp_path / "other"
    assert main(train_argv(other, "gan-mnist", 1)) == 0
    capsys.readouterr()
    src = ckpt.list_checkpoints(other)[-1]
    # The other run's newest checkpoint, moved into this run as its newest (step 9).
    shutil.copy(src.with_suffix(".safetensors"), run / "checkpoints" / "step_000000009.safetensors")
    meta = json.loads(src.read_text())
    meta.update(step=9, tensors_file="step_000000009.safetensors")
    (run / "checkpoints" / "step_000000009.json").write_text(json.dumps(meta))
    refused(capsys, ["train", "--resume", str(run), "--steps", "12"],
            "holds a different model than this config; resume with the run's own config.json",
            watch=run)


def test_resume_with_a_config_change_that_alters_the_model(run, capsys):
    refused(capsys, ["train", "--resume", str(run), "--set", "model.g_hidden=[16]"],
            "holds a different model than this config", watch=run)


def test_newer_format_version(run, capsys, tmp_path):
    for path in ckpt.list_checkpoints(run):
        meta = json.loads(path.read_text())
        meta["format_version"] = ckpt.FORMAT_VERSION + 1
        path.write_text(json.dumps(meta))
    refused(capsys, ["generate", str(run), "--out", str(tmp_path / "g.png")],
            f"has format version {ckpt.FORMAT_VERSION + 1}, newer than this ganforge "
            "understands")
    refused(capsys, ["train", "--resume", str(run), "--steps", "8"], "upgrade ganforge",
            watch=run)


def test_every_checkpoint_truncated(run, capsys):
    for path in ckpt.list_checkpoints(run):
        st = path.with_suffix(".safetensors")
        st.write_bytes(st.read_bytes()[:100])
    refused(capsys, ["train", "--resume", str(run), "--steps", "8"],
            "no usable checkpoint in", watch=run)


def test_resume_falls_back_to_the_previous_good_checkpoint(run, capsys):
    newest = ckpt.list_checkpoints(run)[-1]
    st = newest.with_suffix(".safetensors")
    st.write_bytes(st.read_bytes()[:-20])  # truncated
    assert main(["train", "--resume", str(run), "--steps", "6"]) == 0
    captured = capsys.readouterr()
    # On stderr, apart from results: what was wrong, where it went, what is used instead.
    assert f"checkpoints/{newest.name}: checkpoint '{st}' fails its checksum" in captured.err
    assert f"moved to checkpoints/corrupt/{newest.name}; using checkpoints/" \
        "step_000000003.json (step 3) instead" in captured.err
    assert "resumed from step_000000003.json at step 3" in captured.out
    assert [r["step"] for r in read_jsonl(run / "stats.jsonl")] == [1, 2, 3, 4, 5, 6]


def test_resume_a_folder_that_is_not_a_run(capsys, tmp_path):
    refused(capsys, ["train", "--resume", str(tmp_path)], "is not a run folder (no config.json)",
            watch=tmp_path)


def test_resume_a_file(capsys, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04 not a folder")
    refused(capsys, ["train", "--resume", str(path)], f"'{path}' is a file, not a run folder; "
            "pass the folder `ganforge train` made", watch=tmp_path)


def test_resume_with_a_preset(run, capsys):
    refused(capsys, ["train", "--resume", str(run), "--preset", "gan-mnist"],
            "--resume uses the run's saved config; drop --preset", watch=run)


def test_samples_npz_truncated(capsys, tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, images=np.zeros((8, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    refused(capsys, ["evaluate", str(path), "--metrics", "fid", "--dataset", "mnist"],
            "cannot read samples", watch=tmp_path)


# ---------------------------------------------------------------------------------------------
# Output: unwritable, full disk, a folder in use
# ---------------------------------------------------------------------------------------------

def test_output_folder_under_a_regular_file(capsys, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder should be")
    out = blocker / "run"
    refused(capsys, train_argv(out), f"'{blocker}' is a file, not a folder; choose another --out",
            watch=tmp_path)


def test_generate_into_an_unwritable_place(run, capsys, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    refused(capsys, ["generate", str(run), "--n", "4", "--out", str(blocker / "g.png")],
            f"'{blocker}' is a file, not a folder; choose another --out")
    assert blocker.read_text() == "a file"


def _disk_fills_up(monkeypatch, when) -> None:
    """``Path.write_bytes`` writes half, then fails like a full disk, for temp files ``when``
    accepts (the atomic writers all go through a temporary file)."""
    real = Path.write_bytes

    def write_bytes(self, data):
        if when(self.name):
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_disk_full_while_saving_a_checkpoint(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    _disk_fills_up(monkeypatch, lambda name: name.startswith(".step_000000004.safetensors."))
    argv = train_argv(out, "gan-mnist", 6) + sets("log.checkpoint_every=2")
    line = refused(capsys, argv, "no space left on the device; free some space")
    assert "step_000000004.safetensors" in line
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [] and not (out / ".lock").exists()
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step_000000002.json"]
    assert not (out / "checkpoints" / "step_000000004.safetensors").exists()
    monkeypatch.undo()  # space again: the run resumes from its last good checkpoint
    assert main(["train", "--resume", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 6


def test_disk_full_while_generating(run, capsys, tmp_path, monkeypatch):
    target = tmp_path / "samples.npz"
    monkeypatch.setattr(np, "savez_compressed",
                        lambda fh, **arrays: (fh.write(b"PK\x03\x04 half"),
                                              _raise(OSError(errno.ENOSPC, "No space"))))
    refused(capsys, ["generate", str(run), "--n", "4", "--format", "npz", "--out", str(target)],
            f"cannot write '{target}': no space left on the device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no npz, no temp file


def _raise(err: BaseException):
    raise err


def test_disk_full_while_appending_stats(tmp_path):
    from ganforge.errors import GanforgeError
    from ganforge.reporting import JsonlWriter

    writer = JsonlWriter(tmp_path / "stats.jsonl")
    writer.write_scalars(1, {"Loss/D": 0.5})

    class FullDisk:
        closed = False

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    writer._file, real = FullDisk(), writer._file
    with pytest.raises(GanforgeError, match="stats.jsonl': no space left on the device") as info:
        writer.write_scalars(2, {"Loss/D": 0.4})
    assert "\n" not in str(info.value)
    real.close()
    assert [r["step"] for r in read_jsonl(tmp_path / "stats.jsonl")] == [1]


def _hold_lock(run: Path) -> subprocess.Popen:
    """Another process that holds RUN/.lock the way a training process does."""
    code = ("import fcntl, os, sys\n"
            f"fd = os.open({str(run / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, str(os.getpid()).encode())\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_run_folder_in_use_by_another_process(run, capsys):
    holder = _hold_lock(run)
    try:
        refused(capsys, ["train", "--resume", str(run), "--steps", "6"],
                f"run folder '{run}' is in use by another ganforge process (PID {holder.pid})",
                watch=run)
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel drops its lock
        holder.wait()
    assert (run / ".lock").exists()  # the file stays behind, the lock does not
    assert main(["train", "--resume", str(run), "--steps", "6"]) == 0
    assert not (run / ".lock").exists()
    assert json.loads((run / "summary.json").read_text())["steps"] == 6
