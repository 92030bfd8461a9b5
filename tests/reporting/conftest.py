"""Small real runs shared by the report, compare and browser tests (trained once per session)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganforge import api
from ganforge.config import DataConfig
from ganforge.metrics.evaluator import train_evaluator
from tests.conftest import fast_overrides

DATA_URI_RE = re.compile(r'src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)"')


def tiny_cgan_overrides(evaluator: Path | None, seed: int = 0, steps: int = 40) -> list[str]:
    """A conditional MLP GAN on the generated shapes: seconds on one CPU thread.

    1,000 samples at batch 16 make an epoch 62 steps, so no epoch-end snapshot falls inside
    short runs and the snapshots are exactly every 10 steps.
    """
    overrides = fast_overrides(steps, batch=16) + [
        "data.name=synthetic", "data.limit=1000", "model.g_hidden=[32,64]",
        "model.d_hidden=[64]", "log.log_every=5", "log.sample_every=10",
        "log.checkpoint_every=20", "log.tensorboard=false", "log.report_every_s=0",
        f"train.seed={seed}"]
    if evaluator is not None:
        overrides.append(f'eval.extractor="{evaluator}"')
    return overrides


@pytest.fixture(scope="session")
def synthetic_evaluator(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluator") / "synthetic-lenet.safetensors"
    train_evaluator(DataConfig(name="synthetic", limit=600), epochs=1, batch_size=50, seed=0,
                    out_path=str(out), threads=1, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def cgan_runs(tmp_path_factory, synthetic_evaluator) -> list[Path]:
    """Two finished conditional runs that differ only by seed, each with its report.html."""
    root = tmp_path_factory.mktemp("runs")
    runs = []
    threads = torch.get_num_threads()  # session fixtures run outside the per-test thread limit
    torch.set_num_threads(1)
    try:
        for seed in (0, 1):
            out = root / f"cgan-seed{seed}"
            api.train("cgan-mnist", overrides=tiny_cgan_overrides(synthetic_evaluator, seed),
                      out=str(out), log=lambda m: None)
            runs.append(out)
    finally:
        torch.set_num_threads(threads)
    return runs


def decoded_images(html: str) -> list[Image.Image]:
    """Every data-URI image of a page, decoded and fully loaded by Pillow."""
    images = []
    for mime, payload in DATA_URI_RE.findall(html):
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
        assert image.format.lower() == mime.split("/")[1], (image.format, mime)
        images.append(image)
    return images


def assert_self_contained(html: str) -> None:
    """No URL, file or external resource anywhere in the page."""
    for needle in ("http://", "https://", "file:", "<link", "@import", "url("):
        assert needle not in html, needle
    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/") for s in sources)


def train_on_fake_faces(root: Path, make_faces, preset: str) -> Path:
    """A two-step run of an attribute-conditioned face ``preset`` on 12 generated 16 px faces
    (``make_faces`` is the ``fake_celeba`` fixture); returns its folder ``root/r``."""
    make_faces(root / "data", n=12)
    overrides = fast_overrides(2, batch=4) + [
        "data.root=" + str(root / "data"), "data.split=train", "data.download=false",
        "data.image_size=16", "model.g_width=4", "model.d_width=4", "log.report_every_s=0"]
    api.train(preset, overrides=overrides, out=str(root / "r"), log=lambda m: None)
    return root / "r"
