"""Shared fixtures: the offline MNIST test split and small, fast run overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads():
    # Two cores on CI: keep each test on one thread so pytest's own work is not starved.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def mnist_root() -> Path:
    """The MNIST test split in torchvision's raw layout, when it is present."""
    if not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("the MNIST test split is not in ../shared/data (offline fixture absent)")
    return SHARED_DATA


def fast_overrides(steps: int = 2, batch: int = 8) -> list[str]:
    """Overrides that turn any preset into a seconds-long run on generated data."""
    return [
        f"train.steps={steps}", "train.epochs=none", "train.minutes=none",
        f"train.batch_size={batch}", "train.device=cpu", "log.progress=false",
        "log.log_every=1", "log.sample_every=1", "log.checkpoint_every=1",
        "log.grid_columns=3", "log.grid_samples=9",
        # report.html costs about as much as a two-step run; tests/reporting builds it.
        "log.report_every_s=none",
        # A preset's end-of-run scoring (eval.final) samples 10,000 images; tests/training/watch
        # covers it.
        "eval.final=[]",
    ]


def family_config(arch: str, **values):
    """A model section for ``arch`` from values meant for any family: each family takes the
    settings it declares (tiny widths for dcgan, hidden sizes for mlp) and no others."""
    import dataclasses

    from ganforge.config import ModelConfig, section_type

    keys = {f.name for f in dataclasses.fields(section_type("model", arch))}
    return ModelConfig(arch=arch, **{k: v for k, v in values.items() if k in keys})
