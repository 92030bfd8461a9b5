"""``mnist-pairs``: the 100 two-digit numbers 00–99, a many-class benchmark made from MNIST.

Each sample puts two MNIST digits side by side in a 28×56 image; its class is the number they
read, 10 · left + right. With 100 classes (about 100 real examples of each per 10,000 samples)
it stresses a conditional GAN the way Kuzushiji-49 did in seed 000, using only digits that are
available offline. A sample's label accuracy is measured by classifying each 28×28 half with
an MNIST evaluator (metric ``two-digit-acc``).

Like ``stacked-mnist``, the pairs are drawn with a fixed seed per split from that split's MNIST
digits (falling back to the embedded ``digits`` sample when MNIST is unavailable).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.data.base import DATASETS, TensorData
from ganforge.data.stacked_mnist import MNIST_ROOT, labelled_digits
from ganforge.errors import DataError

N_DEFAULT = 20_000
N_CLASSES = 100
SEED = {"train": 10, "test": 11}


def pair_digits(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose random digit pairs side by side.

    Every number 00..99 gets ``n // 100`` samples (the remainder goes to the first numbers), so
    the classes are balanced; each digit of a number is a random image of that digit.

    Args:
        images: (M, 1, H, W) uint8 digits.
        labels: (M,) int64 their classes 0..9 (every digit must occur).
        n: number of pairs.
        seed: seeds the draw (numpy PCG64), so the result is deterministic.

    Returns:
        x (n, 1, H, 2W) uint8 and y (n,) int64 = 10 · left + right.
    """
    rng = np.random.default_rng(seed)
    y = torch.from_numpy(rng.permutation(np.arange(n) % N_CLASSES)).to(torch.int64)
    by_digit = [torch.nonzero(labels == d).flatten() for d in range(10)]
    if any(len(idx) == 0 for idx in by_digit):
        raise DataError("mnist-pairs needs examples of every digit 0..9")
    halves = []
    for digits in (y // 10, y % 10):
        pick = torch.empty(n, dtype=torch.int64)
        for d in range(10):
            mask = digits == d
            choice = rng.integers(0, len(by_digit[d]), size=int(mask.sum()))
            pick[mask] = by_digit[d][torch.from_numpy(choice)]
        halves.append(images[pick])
    return torch.cat(halves, dim=3).contiguous(), y


@DATASETS.register("mnist-pairs", info=MNIST_ROOT)
def build_mnist_pairs(cfg) -> TensorData:
    """Two-digit numbers 00..99 as 28×56 images, 100 balanced classes.

    ``data.limit`` pairs are made (20,000 when unset) from the MNIST digits of ``data.split``.

    Returns:
        TensorData with x (N, 1, 28, 56) uint8, y (N,) int64 in 0..99, class names "00".."99".
    """
    base, note = labelled_digits(cfg, "mnist-pairs", SEED)
    n = cfg.limit if cfg.limit is not None else N_DEFAULT
    x, y = pair_digits(base.x, base.y, n, SEED[cfg.split])
    return TensorData(
        x=x, y=y, n_classes=N_CLASSES, name="mnist-pairs",
        class_names=[f"{i:02d}" for i in range(N_CLASSES)],
        source=f"mnist-pairs: {n} two-digit numbers (seed {SEED[cfg.split]}) of {note}"
               f"{base.source}",
    )
