"""The "typical implementation" ganforge is measured against, as the speed benchmarks drive it.

The loop itself — a ``torchvision``-style PIL dataset with the per-sample ``ToTensor`` /
``Normalize`` of the tutorials, a ``DataLoader``, a second forward of G for the G step, D not
frozen, plain Adam, the BCE / acgan.py / wgan_gp.py objectives and the four loops the quality
benchmark trains (:data:`TYPICAL`) — is :mod:`ganforge.bench.typical`, on the preset's own nets
with stock ``nn.Dropout`` (``ganforge.api.build_networks(..., plain=True)``). This script adds
what ``speed.py`` and ``throughput.py`` need around it: :class:`BaselineGAN` reads the MNIST
test split from a data root (or takes other data, cut to ``limit`` images), takes the batch
size and objective as arguments, counts the seconds spent inside the DataLoader and runs a
number of steps. Images/s counts real images consumed per second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import torch

from ganforge import api
from ganforge.bench.typical import (OBJECTIVES, TYPICAL, ArrayPIL,  # noqa: F401  (re-exported)
                                    TypicalLoop, standard_transform)
from ganforge.config import Config, resolve

# Where the MNIST test split lives relative to the repository root (see ../shared/data/README.md).
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


class BaselineGAN(TypicalLoop):
    """The typical loop on ``cfg``'s nets, timed the way the speed benchmark needs.

    Args:
        cfg: a resolved ganforge config; its model and optimiser settings are used, its loop
            and data settings are not.
        batch_size: B; defaults to ``cfg.train.batch_size``.
        root: data root with the MNIST test split (read when ``data`` is None).
        limit: use only the first ``limit`` images (smoke tests).
        seed: seeds torch for the nets and the DataLoader shuffle.
        data: other image data (ganforge's ``TensorData``: the synthetic stand-ins of CIFAR-10
            or CelebA shapes); None reads MNIST's test split from ``root``.
        objective: a key of :data:`OBJECTIVES`.
        n_critic: D steps (each on its own real batch) per G step.
        gp_weight: lambda of the WGAN-GP penalty.
    """

    def __init__(self, cfg: Config, batch_size: Optional[int] = None, root: Path = SHARED_DATA,
                 limit: Optional[int] = None, seed: int = 0, data: Any = None,
                 objective: str = "bce", n_critic: int = 1, gp_weight: float = 10.0) -> None:
        if data is None:
            data = api.load_dataset("mnist", split="test", root=root)
        super().__init__(cfg, data if limit is None else data.head(limit), seed, objective,
                         n_critic, batch_size, gp_weight)
        self.dataset = self.loader.dataset
        self.data_time = 0.0  # seconds spent inside the DataLoader (read by the benchmark)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = time.perf_counter()
        batch = super().next_batch()
        self.data_time += time.perf_counter() - t0
        return batch

    def run(self, steps: int) -> float:
        """Run ``steps`` steps; returns their wall time in seconds."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - t0


def build_typical(name: str, seed: int, root: Path = SHARED_DATA,
                  limit: Optional[int] = None) -> BaselineGAN:
    """The typical loop ``name`` (a key of :data:`TYPICAL`) on the MNIST test split."""
    spec = TYPICAL[name]
    return BaselineGAN(spec.config(), root=root, limit=limit, seed=seed,
                       objective=spec.objective, n_critic=spec.n_critic)


if __name__ == "__main__":
    # A few timed steps on their own, for a quick look: python benchmarks/baseline.py [preset] [B]
    import sys

    preset = sys.argv[1] if len(sys.argv) > 1 else "cgan-mnist"
    torch.set_num_threads(2)
    if preset in TYPICAL:
        loop = build_typical(preset, 0)
    else:
        loop = BaselineGAN(resolve(preset), int(sys.argv[2]) if len(sys.argv) > 2 else None)
    loop.run(3)
    dt = loop.run(20)
    print(f"{preset} B={loop.batch_size}: {20 * loop.images_per_step() / dt:.0f} images/s "
          "(baseline, 2 threads)")
