"""``ganforge evaluate SAMPLES --reference FOLDER_OR_NPZ``: images given as files are the real
set (a folder against itself scores FID 0, a folder and an npz of the same images give the same
statistics), brought to the samples' size, cached by content; samples may be a folder too."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from ganforge import api
from ganforge.config import DataConfig
from ganforge.errors import GanforgeError
from ganforge.metrics import context
from ganforge.metrics import evaluate as E
from ganforge.metrics.evaluator import train_evaluator
from ganforge.metrics.reference import reference_stats
from ganforge.metrics.reference_files import open_reference
from tests.metrics import FakeExtractor, painted
from tests.training.step.test_loop import preset_on_generated_data

N = 60


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))  # the statistics cache


@pytest.fixture
def fake_loader(monkeypatch):
    """Every evaluator spec loads one shared FakeExtractor; returns (extractor, specs asked)."""
    ext, specs = FakeExtractor(), []

    def load(spec, device="cpu"):
        specs.append(spec)
        return ext

    monkeypatch.setattr(context, "load_extractor", load)
    return ext, specs


def images(n: int = N, size: int = 28, channels: int = 1) -> np.ndarray:
    """(n, C, size, size) uint8: ten painted classes with texture."""
    return painted(torch.arange(n) % 10, size=size, channels=channels).numpy()


def write_folder(folder: Path, x: np.ndarray) -> list[Path]:
    """PNG files in nested folders (recursion), plus files that are not images."""
    paths = []
    for i, image in enumerate(x):
        path = folder / f"part{i % 3}" / ("deep" if i % 2 else "") / f"img_{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(path)
        paths.append(path)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored")
    return paths


def npz_of(path: Path, folder: Path, key: str = "images") -> Path:
    """An npz of a folder's images, in the folder's order (sorted relative paths)."""
    files = sorted(folder.rglob("img_*.png"), key=lambda p: p.relative_to(folder).as_posix())
    x = np.stack([np.asarray(Image.open(f)) for f in files])
    np.savez(path, **{key: x})
    return path


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ganforge")
    E.add_evaluate_parser(parser.add_subparsers(dest="command"))
    return E.cmd_evaluate(parser.parse_args(["evaluate", *argv]))


# ------------------------------------------------------------------------------- exactness

def test_a_folder_against_itself_scores_fid_zero(tmp_path, fake_loader, capsys):
    folder = tmp_path / "samples"
    write_folder(folder, images())
    assert run_cli([str(folder), "--reference", str(folder), "--metrics", "fid",
                    "--evaluator", "any-lenet", "--n-real", str(N)]) == 0
    results = {r["name"]: r for r in json.loads(
        (tmp_path / "samples-metrics.json").read_text())["results"]}
    fid = results[f"fid{N}_fake-lenet"]
    assert fid["value"] == pytest.approx(0.0, abs=1e-4)
    ref = fid["protocol"]["reference"]
    assert (ref["dataset"], ref["split"], ref["image_size"], ref["channels"]) == (
        "folder", "all", 28, 1)
    assert ref["path"] == str(folder.resolve()) and len(ref["sha256"]) == 64
    assert f"{N} images" in ref["source"]
    assert fid["protocol"]["n_fake"] == N and fid["protocol"]["n_real"] == N


@pytest.mark.parametrize("key", ["images", "x"])
def test_a_folder_and_an_npz_of_the_same_images_give_the_same_statistics(key, tmp_path):
    folder = tmp_path / "real"
    write_folder(folder, images())
    npz = npz_of(tmp_path / "real.npz", folder, key)
    ext = FakeExtractor()
    a = reference_stats(ext, open_reference(folder, (1, 28, 28)), 40, seed=3, log=print)
    b = reference_stats(ext, open_reference(npz, (1, 28, 28)), 40, seed=3, log=print)
    for name in ("features", "mu", "sigma"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.n == b.n == 40


def test_real_images_are_brought_to_the_samples_size_and_channels(tmp_path):
    real = images(size=32, channels=3)
    folder = tmp_path / "real"
    write_folder(folder, real)
    npz = npz_of(tmp_path / "real.npz", folder)
    data = open_reference(folder, (1, 28, 28)).load()
    assert data.x.shape == (N, 1, 28, 28) and data.x.dtype == torch.uint8
    order = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("img_*.png"))
    first = Image.fromarray(real[0].transpose(1, 2, 0)).convert("L")
    want = np.asarray(ImageOps.fit(first, (28, 28), method=Image.Resampling.BICUBIC))
    assert np.array_equal(data.x[order.index("part0/img_000.png"), 0].numpy(), want)
    assert torch.equal(open_reference(npz, (1, 28, 28)).load().x, data.x)


# ----------------------------------------------------------------------------------- cache

def test_statistics_are_cached_by_content_not_by_path(tmp_path):
    folder = tmp_path / "real"
    paths = write_folder(folder, images())
    ext = FakeExtractor()
    reference_stats(ext, open_reference(folder, (1, 28, 28)), None, log=print)
    seen = ext.calls
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)  # the same files elsewhere: the cached entry is reused
    reference_stats(ext, open_reference(moved, (1, 28, 28)), None, log=print)
    assert ext.calls == seen
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(moved / paths[5].relative_to(folder))
    changed = reference_stats(ext, open_reference(moved, (1, 28, 28)), None, log=print)
    assert ext.calls == 2 * seen  # one edited image: new statistics
    assert changed.meta["key"]["data"]["content"] != open_reference(folder, (1, 28, 28)).content


# ------------------------------------------------------------------ runs, evaluators, errors

def test_a_run_is_scored_against_files_with_its_own_evaluator(tmp_path, fake_loader, capsys):
    ext, specs = fake_loader
    run_dir = tmp_path / "run"
    api.train("cgan-digits", overrides=preset_on_generated_data("cgan-digits"),
              out=str(run_dir), log=lambda m: None)
    folder = tmp_path / "real"
    write_folder(folder, images())
    assert run_cli([str(run_dir), "--reference", str(folder), "--metrics", "fid",
                    "--n", "50"]) == 0
    (fid,) = json.loads((run_dir / "metrics.json").read_text())["results"]
    assert specs == ["synthetic-lenet"]  # the run's dataset's evaluator
    assert fid["name"] == "fid50_fake-lenet" and fid["protocol"]["n_real"] == 50
    assert fid["protocol"]["reference"]["dataset"] == "folder"


def test_a_domain_evaluator_scores_files_the_same_as_folder_or_npz(tmp_path):
    evaluator = tmp_path / "synthetic-lenet.safetensors"
    train_evaluator(DataConfig(name="synthetic", limit=300), epochs=1, batch_size=50, seed=0,
                    out_path=str(evaluator), threads=1, log=lambda m: None)
    folder, samples = tmp_path / "real", tmp_path / "samples"
    write_folder(folder, images())
    write_folder(samples, images(40)[::-1].copy())
    npz = npz_of(tmp_path / "real.npz", folder)
    by_folder = E.evaluate(samples, ["fid"], str(evaluator), str(folder), n_fake=None, log=print)
    by_npz = E.evaluate(samples, ["fid"], str(evaluator), str(npz), n_fake=None, log=print)
    assert by_folder[0].name == "fid40_synthetic-lenet"
    assert by_folder[0].value == by_npz[0].value and by_folder[0].value > 0


@pytest.mark.parametrize("argv, message", [
    (["--reference", "REAL", "--dataset", "mnist"], "both name the real set"),
    (["--reference", "MISSING"], "neither a folder of images nor an .npz file"),
    ([], "is a folder of images, not a run"),
    (["--reference", "REAL", "--metrics", "fid"], "no evaluator of their own"),
])
def test_bad_requests_are_one_line(argv, message, tmp_path):
    folder = tmp_path / "real"
    write_folder(folder, images(12))
    argv = [a.replace("REAL", str(folder)).replace("MISSING", str(tmp_path / "nope"))
            for a in argv]
    with pytest.raises(GanforgeError, match=message) as info:
        run_cli([str(folder), *argv])
    assert "\n" not in str(info.value)


def test_parzen_scores_against_reference_files(tmp_path):
    """parzen reads the real set from --reference files like any metric (no dataset needed)."""
    folder = tmp_path / "real"
    write_folder(folder, images(120))
    npz = npz_of(tmp_path / "real.npz", folder)
    fakes = tmp_path / "fakes"
    write_folder(fakes, images(40))
    by_folder = E.evaluate(fakes, ["parzen"], None, str(folder), n_fake=None, log=print)[0]
    by_npz = E.evaluate(fakes, ["parzen"], None, str(npz), n_fake=None, log=print)[0]
    assert by_folder.value == by_npz.value and by_folder.name == "parzen40_folder"
    assert by_folder.details["n_val"] + by_folder.details["n_test"] == 120


def test_samples_of_several_sizes_are_refused(tmp_path):
    folder = tmp_path / "samples"
    write_folder(folder, images(4))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "other.png")
    with pytest.raises(GanforgeError, match="not of one square size"):
        E.evaluate(folder, ["fid"], FakeExtractor(), str(folder))
