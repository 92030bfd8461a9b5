"""``stacked-mnist``: the 1,000-mode Stacked MNIST benchmark (Metz et al. 2017; VEEGAN; PacGAN).

Each sample stacks three MNIST digits, drawn independently and uniformly, as the three channels
of one 28x28 image; its class is the digit triple read as a number, 100 d0 + 10 d1 + d2, so the
set has 1,000 equally likely modes. A GAN's mode coverage is then measured by classifying each
channel of its samples with an MNIST evaluator (``ganforge.metrics.coverage``).

The digits come from the ``mnist`` dataset of the configured split and root (so the test split
stacks test digits). When MNIST cannot be read or downloaded, the embedded ``digits`` sample
(5,000 real MNIST digits, no download) is used instead and ``TensorData.source`` says so.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ganforge.data import embedded, torchvision_sets  # noqa: F401  (register digits, mnist)
from ganforge.data.base import DATASETS, DataRoot, TensorData, one_line
from ganforge.errors import DataError

N_DEFAULT = 60_000  # samples when data.limit is unset: the size of MNIST's train split
N_MODES = 1000
# Fixed seeds: the stacking is part of the benchmark's definition, not of a run's seed. The
# test split draws its triples with another seed (and from test digits).
SEED = {"train": 0, "test": 1}
# The digits' root is MNIST's (the composed sets are made when they are loaded).
MNIST_ROOT = DataRoot("the folder that holds the MNIST files")


def stack_digits(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack random triples of single-channel digits into 3-channel images.

    Args:
        images: (M, 1, H, W) uint8 digits.
        labels: (M,) int64 their classes 0..9.
        n: number of stacked samples.
        seed: seeds the choice of digits (numpy PCG64), so the result is deterministic.

    Returns:
        x (n, 3, H, W) uint8 with channel c the digit d_c, and y (n,) int64 = 100 d0 + 10 d1 + d2.
    """
    rng = np.random.default_rng(seed)
    idx = torch.from_numpy(rng.integers(0, images.shape[0], size=(n, 3)))
    x = images[idx.flatten(), 0].reshape(n, 3, *images.shape[-2:])
    d = labels[idx]
    return x.contiguous(), (d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]).to(torch.int64)


def _base_digits(cfg) -> tuple[TensorData, str]:
    """The single digits to stack: MNIST of cfg's split/root, else the embedded sample."""
    # Only the split, root and download setting carry over: limit/size/channels apply to the
    # stacked set (build_dataset does that afterwards), not to the digits it is made of.
    plain = replace(cfg, name="mnist", limit=None, channels=None, image_size=None)
    try:
        return DATASETS.get("mnist")(plain), ""
    except DataError as err:
        note = f"MNIST unavailable ({one_line(err, 100)}); "
    fallback = replace(plain, name="digits")
    return DATASETS.get("digits")(fallback), note


def labelled_digits(cfg, name: str, seeds: dict[str, int]) -> tuple[TensorData, str]:
    """The labelled single-channel digits a composed dataset ``name`` is made of, and a note.

    Raises:
        DataError: a split without a composition seed, or digits that are not labelled 1-channel.
    """
    if cfg.split not in seeds:
        raise DataError(f"{name} has splits {' and '.join(seeds)}, not '{cfg.split}'")
    base, note = _base_digits(cfg)
    if base.y is None or base.x.shape[1] != 1:
        raise DataError(f"{name} needs labelled 1-channel digits, got {base.source}")
    return base, note


@DATASETS.register("stacked-mnist", info=MNIST_ROOT)
def build_stacked_mnist(cfg) -> TensorData:
    """Stacked MNIST, 1,000 classes: 3 random MNIST digits as the channels of a 28x28 image.

    ``data.limit`` samples are made (60,000 when unset), deterministically per split from that
    split's MNIST digits; without MNIST the embedded ``digits`` sample is stacked instead and
    ``source`` says so.

    Returns:
        TensorData with x (N, 3, 28, 28) uint8, y (N,) int64 in 0..999, n_classes 1000,
        class names "000".."999".
    """
    base, note = labelled_digits(cfg, "stacked-mnist", SEED)
    n = cfg.limit if cfg.limit is not None else N_DEFAULT
    x, y = stack_digits(base.x, base.y, n, SEED[cfg.split])
    return TensorData(
        x=x,
        y=y,
        n_classes=N_MODES,
        name="stacked-mnist",
        class_names=[f"{i:03d}" for i in range(N_MODES)],
        source=f"stacked-mnist: {n} triples (seed {SEED[cfg.split]}) of {note}{base.source}",
    )
