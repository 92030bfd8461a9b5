"""The "typical implementation" ganforge is measured against.

This is the training loop found in most PyTorch GAN tutorials and in the popular PyTorch-GAN
scripts that the project's seeds were copied from, written here from scratch:

* a ``torchvision.datasets``-style dataset that keeps the uint8 array in memory and turns every
  sample into a ``PIL.Image`` in ``__getitem__``, then applies
  ``Compose([ToTensor(), Normalize([0.5], [0.5])])`` to it — one sample at a time;
* ``torch.utils.data.DataLoader(batch_size=B, shuffle=True, drop_last=True, num_workers=0)``
  collating the samples into a batch;
* a D step on the real batch and on ``G(z).detach()``, then a *second* forward of G on fresh
  noise for the G step (ganforge reuses the first fake batch's graph instead);
* ``BCEWithLogitsLoss`` and plain ``torch.optim.Adam``; D is not frozen during the G step, so
  the G backward also computes D's weight gradients (thrown away by the next ``zero_grad``).

Only the loop and the data path differ from ganforge: G and D are built with
:func:`ganforge.models.build_from_config` from the same preset, so the networks (and therefore
the arithmetic per image) are identical — except that every ganforge ``FastDropout`` is swapped
back to the stock ``nn.Dropout`` a tutorial would use (:func:`stock_dropout`), since the faster
CPU dropout is part of what is measured. Images/s counts real images consumed per second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganforge.config import Config
from ganforge.data.torchvision_sets import read_idx
from ganforge.models import build_from_config
from ganforge.models.layers import FastDropout

# Where the MNIST test split lives relative to the repository root (see ../shared/data/README.md).
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MNIST_RAW = ("MNIST", "raw")


def find_mnist_test(root: Path = SHARED_DATA) -> tuple[Path, Path]:
    """Paths of the MNIST t10k images/labels files (plain or gzipped) under ``root``.

    Raises:
        FileNotFoundError: the test split is not there (the message says where it should be).
    """
    found = []
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        for folder in (root.joinpath(*MNIST_RAW), root):
            hits = [folder / n for n in (name, f"{name}.gz") if (folder / n).is_file()]
            if hits:
                found.append(hits[0])
                break
        else:
            raise FileNotFoundError(f"{name} not found in '{root.joinpath(*MNIST_RAW)}'; the "
                                    "baseline needs the MNIST test split there")
    return found[0], found[1]


def stock_dropout(net: nn.Module) -> nn.Module:
    """Replace every ganforge ``FastDropout`` inside ``net`` by a stock ``nn.Dropout``, in place.

    ganforge's nets use ``FastDropout`` (``ganforge.models.layers``): the same dropout with a
    mask drawn several times faster on the CPU than torch's ``bernoulli_``. A typical
    implementation uses ``nn.Dropout``, so the baseline swaps each one back to
    ``nn.Dropout(p, inplace)`` under the same name; the nets' parameters and state-dict keys are
    unchanged (dropout has none).

    Returns:
        ``net`` itself, for chaining.
    """
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FastDropout):
                stock = nn.Dropout(child.p, child.inplace)
                stock.train(child.training)
                setattr(parent, name, stock)
    return net


class ArrayPIL(Dataset):
    """Any in-memory uint8 image set served the torchvision way: a PIL image (mode "L" or
    "RGB", as ``torchvision.datasets.CIFAR10`` and ``ImageFolder`` hand out) and an int label.

    Args:
        images: (N, C, H, W) uint8 with C = 1 or 3 (ganforge's ``TensorData.x``).
        labels: (N,) int64 class indices, or None (every label is 0).
        transform: applied to every PIL image.
    """

    def __init__(self, images: torch.Tensor, labels: Optional[torch.Tensor],
                 transform: Any = None) -> None:
        hwc = images.permute(0, 2, 3, 1).contiguous().numpy()   # PIL wants H x W (x C)
        self.images = hwc[..., 0] if hwc.shape[-1] == 1 else hwc
        self.labels = (np.zeros(len(hwc), np.int64) if labels is None
                       else labels.numpy().astype(np.int64))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = Image.fromarray(self.images[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[index])


class MNISTPIL(ArrayPIL):
    """MNIST as ``torchvision.datasets.MNIST`` serves it: a PIL image (mode "L") and an int label
    per item.

    Args:
        root: data root holding ``MNIST/raw/t10k-*`` (the test split is all that is offline).
        transform: applied to every PIL image (the per-sample ToTensor/Normalize of the tutorials).
        limit: keep only the first ``limit`` samples (smoke tests).
    """

    def __init__(self, root: Path = SHARED_DATA, transform: Any = None,
                 limit: Optional[int] = None) -> None:
        images_path, labels_path = find_mnist_test(Path(root))
        images = torch.from_numpy(read_idx(images_path)[:limit].copy())   # (N, 28, 28) uint8
        labels = torch.from_numpy(read_idx(labels_path)[:limit].astype(np.int64))
        super().__init__(images.unsqueeze(1), labels, transform)


def standard_transform(channels: int = 1) -> transforms.Compose:
    """The per-sample transform every GAN tutorial uses: [0, 255] -> [-1, 1] per channel."""
    half = [0.5] * channels
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(half, half)])


class BaselineGAN:
    """A plain PyTorch GAN training loop on ganforge's own nets for ``cfg``.

    Args:
        cfg: a resolved ganforge config; its model and optimiser settings (lr, betas, eps) are
            used, its loop and data settings are not.
        batch_size: B; defaults to ``cfg.train.batch_size``.
        root: data root with the MNIST test split (used when ``data`` is None).
        limit: use only the first ``limit`` images (smoke tests).
        seed: seeds torch for the nets and the DataLoader shuffle.
        data: other image data (ganforge's ``TensorData``: the synthetic stand-ins of CIFAR-10
            or CelebA shapes), served through :class:`ArrayPIL`; None reads MNIST from ``root``.
    """

    def __init__(self, cfg: Config, batch_size: Optional[int] = None, root: Path = SHARED_DATA,
                 limit: Optional[int] = None, seed: int = 0, data: Any = None) -> None:
        torch.manual_seed(seed)
        self.batch_size = batch_size or cfg.train.batch_size
        self.z_dim = cfg.model.z_dim
        self.conditional = cfg.model.conditional
        if data is None:
            self.n_classes, shape = 10, (1, 28, 28)
            self.dataset: Dataset = MNISTPIL(root, standard_transform(), limit)
        else:
            self.n_classes, shape = max(data.n_classes, 1), tuple(data.shape)
            self.dataset = ArrayPIL(data.x[:limit], None if data.y is None else data.y[:limit],
                                    standard_transform(shape[0]))
        self.loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                                 drop_last=True, num_workers=0)
        G, D, _ = build_from_config(cfg.model, shape,
                                    self.n_classes if self.conditional else 0)
        self.G, self.D = stock_dropout(G), stock_dropout(D)
        self.G.train()
        self.D.train()
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=tuple(o.betas), eps=o.eps)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas), eps=o.eps)
        self.criterion = nn.BCEWithLogitsLoss()
        self._it: Iterator = iter(self.loader)
        self.data_time = 0.0  # seconds spent inside the DataLoader (read by the benchmark)

    def _labels(self, y: torch.Tensor) -> Optional[torch.Tensor]:
        return y if self.conditional else None

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (images, labels) from the DataLoader, starting a new epoch when it runs out."""
        t0 = time.perf_counter()
        try:
            batch = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            batch = next(self._it)
        self.data_time += time.perf_counter() - t0
        return batch

    def step(self) -> None:
        """One D step and one G step, the way the tutorials write them."""
        real, y_real = self.next_batch()
        B = real.shape[0]
        valid = torch.ones(B)
        fake_t = torch.zeros(B)

        # --- D: real and a detached fake batch (G runs forward with grad, then detached)
        z = torch.randn(B, self.z_dim)
        y_fake = torch.randint(0, self.n_classes, (B,)) if self.conditional else None
        fake = self.G(z, y_fake).detach()
        self.opt_d.zero_grad()
        d_loss = (self.criterion(self.D(real, self._labels(y_real)).adv, valid)
                  + self.criterion(self.D(fake, y_fake).adv, fake_t)) / 2
        d_loss.backward()
        self.opt_d.step()

        # --- G: a second forward of G on fresh noise; D is not frozen (typical)
        z = torch.randn(B, self.z_dim)
        y_gen = torch.randint(0, self.n_classes, (B,)) if self.conditional else None
        self.opt_g.zero_grad()
        g_loss = self.criterion(self.D(self.G(z, y_gen), y_gen).adv, valid)
        g_loss.backward()
        self.opt_g.step()

    def run(self, steps: int) -> float:
        """Run ``steps`` steps; returns their wall time in seconds."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - t0

    def images_per_step(self) -> int:
        """Real images consumed per step (one D step per G step)."""
        return self.batch_size


if __name__ == "__main__":
    # A few timed steps on their own, for a quick look: python benchmarks/baseline.py [preset] [B]
    import sys

    from ganforge.config import resolve

    preset = sys.argv[1] if len(sys.argv) > 1 else "cgan-mnist"
    cfg = resolve(preset)
    B = int(sys.argv[2]) if len(sys.argv) > 2 else cfg.train.batch_size
    torch.set_num_threads(2)
    loop = BaselineGAN(cfg, B)
    loop.run(3)
    dt = loop.run(20)
    print(f"{preset} B={B}: {20 * B / dt:.0f} images/s (baseline, 2 threads)")
