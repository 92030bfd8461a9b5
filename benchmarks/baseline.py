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

Besides the BCE GAN (and cGAN), the loop has the two other objectives the typical scripts use
(:data:`OBJECTIVES`): ACGAN's (BCE real/fake plus cross-entropy of D's class head on real and
on fake images, as PyTorch-GAN's ``acgan.py``) and WGAN-GP's (critic scores, a gradient
penalty on real/fake interpolates, ``n_critic`` critic steps per G step, as PyTorch-GAN's
``wgan_gp.py``). Every D step uses a detached fake batch. :data:`TYPICAL` names the four
typical loops the quality benchmark trains, and :meth:`BaselineGAN.train_for` trains one for a
wall-clock budget, saving G as ganforge checkpoints so it is scored like any run.

Only the loop and the data path differ from ganforge: G and D are built with
:func:`ganforge.models.build_from_config` from the same preset, so the networks (and therefore
the arithmetic per image) are identical — except that every ganforge ``FastDropout`` is swapped
back to the stock ``nn.Dropout`` a tutorial would use (:func:`stock_dropout`), since the faster
CPU dropout is part of what is measured. Images/s counts real images consumed per second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganforge import fileio
from ganforge.config import Config, resolve
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


# ----------------------------------------------------------------------------- objectives

def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _d_bce(loop: "BaselineGAN", real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor,
           y_fake: Optional[torch.Tensor]) -> torch.Tensor:
    return (_bce(loop.D(real, loop.labels(y_real)).adv, 1.0)
            + _bce(loop.D(fake, y_fake).adv, 0.0)) / 2


def _g_bce(loop: "BaselineGAN", fake: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    return _bce(loop.D(fake, y).adv, 1.0)


def _d_acgan(loop: "BaselineGAN", real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor,
             y_fake: torch.Tensor) -> torch.Tensor:
    """acgan.py's D: (adversarial + class loss) on reals and on fakes, each halved, averaged."""
    out_r, out_f = loop.D(real, y_real), loop.D(fake, y_fake)
    return ((_bce(out_r.adv, 1.0) + F.cross_entropy(out_r.cls, y_real)) / 2
            + (_bce(out_f.adv, 0.0) + F.cross_entropy(out_f.cls, y_fake)) / 2) / 2


def _g_acgan(loop: "BaselineGAN", fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = loop.D(fake, y)
    return (_bce(out.adv, 1.0) + F.cross_entropy(out.cls, y)) / 2


def _d_wgan_gp(loop: "BaselineGAN", real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor,
               y_fake: Optional[torch.Tensor]) -> torch.Tensor:
    """Critic loss E[D(fake)] - E[D(real)] + lambda * E[(|grad D(x_hat)| - 1)^2], x_hat on the
    segment between a real and a fake image (one uniform draw per sample)."""
    y = loop.labels(y_real)
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)))
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(loop.D(x_hat, y).adv.sum(), x_hat, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return (loop.D(fake, y_fake).adv.mean() - loop.D(real, y).adv.mean()
            + loop.gp_weight * penalty)


def _g_wgan(loop: "BaselineGAN", fake: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    return -loop.D(fake, y).adv.mean()


Objective = tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]
# name -> (D loss, G loss), each a function of the loop and its batches.
OBJECTIVES: dict[str, Objective] = {
    "bce": (_d_bce, _g_bce),
    "acgan": (_d_acgan, _g_acgan),
    "wgan-gp": (_d_wgan_gp, _g_wgan),
}


# ----------------------------------------------------------------------------- the typical loops

@dataclass(frozen=True)
class Typical:
    """One typical training script: its nets (a preset plus overrides), objective and settings.

    Attributes:
        about: what it is, for the report.
        preset: the preset its nets start from ("" = the config defaults).
        overrides: config overrides pinning the nets, batch size and optimiser (only the model,
            ``optim`` and ``train.batch_size`` matter to :class:`BaselineGAN`).
        objective: a key of :data:`OBJECTIVES`.
        n_critic: D steps per G step.
    """

    about: str
    preset: str
    overrides: tuple[str, ...]
    objective: str = "bce"
    n_critic: int = 1

    def config(self) -> Config:
        return resolve(self.preset or None, overrides=("data.name=mnist",) + self.overrides)


ADAM_2E4 = ("optim.name=adam", "optim.lr_g=2e-4", "optim.lr_d=2e-4", "optim.betas=[0.5,0.999]",
            "optim.eps=1e-8")
PYTORCH_GAN_MLP_G = ("model.arch=mlp", "model.z_dim=100", "model.g_hidden=[128,256,512,1024]",
                     "model.g_norm=batch", "model.g_dropout=0", "model.init=normal02")
TYPICAL: dict[str, Typical] = {
    "typical-cgan": Typical(
        "seed 001's MLP cGAN (PyTorch-GAN cgan.py layout), BCE, batch 64, Adam 2e-4 (0.5, 0.999)",
        "", PYTORCH_GAN_MLP_G + ADAM_2E4 + (
            "model.conditional=true", "model.embed_dim=none", "model.d_label=input",
            "model.d_hidden=[512,512,512]", "model.d_dropout=0.4", "model.d_norm=none",
            "model.spectral_norm=false", "train.batch_size=64")),
    "typical-dcgan": Typical(
        "seed 002's DCGAN: its nets, Xavier init, batch 128, Adam 2e-4 (0.2, 0.999) eps 1e-7",
        "dcgan-seed002-mnist", ()),
    "typical-acgan": Typical(
        "PyTorch-GAN acgan.py objective on seed 000's ACGAN nets (acgan-kmnist's: conv 64-128, "
        "FC 1024, two heads), z ~ N(0, 1), hard labels, batch 64, Adam 2e-4 (0.5, 0.999)",
        "acgan-kmnist", ADAM_2E4 + ("model.z_mean=0", "train.batch_size=64"), "acgan"),
    "typical-wgan-gp": Typical(
        "PyTorch-GAN wgan_gp.py: MLP G (128-256-512-1024) and MLP critic (512-256), lambda 10, "
        "5 critic steps per G step, batch 64, Adam 2e-4 (0.5, 0.999)",
        "", PYTORCH_GAN_MLP_G + ADAM_2E4 + (
            "model.conditional=false", "model.d_hidden=[512,256]", "model.d_dropout=0",
            "model.d_norm=none", "model.spectral_norm=false", "train.batch_size=64"),
        "wgan-gp", 5),
}


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
        objective: a key of :data:`OBJECTIVES` ("bce", "acgan" with a classifier-head D,
            "wgan-gp").
        n_critic: D steps (each on its own real batch) per G step.
        gp_weight: lambda of the WGAN-GP penalty.
    """

    def __init__(self, cfg: Config, batch_size: Optional[int] = None, root: Path = SHARED_DATA,
                 limit: Optional[int] = None, seed: int = 0, data: Any = None,
                 objective: str = "bce", n_critic: int = 1, gp_weight: float = 10.0) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective '{objective}'; use one of {sorted(OBJECTIVES)}")
        torch.manual_seed(seed)
        self.cfg = cfg
        self.batch_size = batch_size or cfg.train.batch_size
        self.z_dim = cfg.model.z_dim
        self.conditional = cfg.model.conditional
        self.d_loss, self.g_loss = OBJECTIVES[objective]
        self.n_critic, self.gp_weight = n_critic, gp_weight
        if data is None:
            self.n_classes, self.shape = 10, (1, 28, 28)
            self.dataset: Dataset = MNISTPIL(root, standard_transform(), limit)
        else:
            self.n_classes, self.shape = max(data.n_classes, 1), tuple(data.shape)
            self.dataset = ArrayPIL(data.x[:limit], None if data.y is None else data.y[:limit],
                                    standard_transform(self.shape[0]))
        self.loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                                 drop_last=True, num_workers=0)
        G, D, self.model_args = build_from_config(cfg.model, self.shape,
                                                  self.n_classes if self.conditional else 0)
        self.G, self.D = stock_dropout(G), stock_dropout(D)
        self.G.train()
        self.D.train()
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=tuple(o.betas), eps=o.eps)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas), eps=o.eps)
        self._it: Iterator = iter(self.loader)
        self.data_time = 0.0  # seconds spent inside the DataLoader (read by the benchmark)
        self.steps = 0        # G steps taken by train_for

    def labels(self, y: torch.Tensor) -> Optional[torch.Tensor]:
        """The real batch's labels as D takes them (None for an unconditional loop)."""
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

    def _fake_labels(self, B: int) -> Optional[torch.Tensor]:
        return torch.randint(0, self.n_classes, (B,)) if self.conditional else None

    def step(self) -> None:
        """``n_critic`` D steps and one G step, the way the tutorials write them."""
        for _ in range(self.n_critic):
            real, y_real = self.next_batch()
            B = real.shape[0]
            # --- D: real and a detached fake batch (G runs forward with grad, then detached)
            z = torch.randn(B, self.z_dim)
            y_fake = self._fake_labels(B)
            fake = self.G(z, y_fake).detach()
            self.opt_d.zero_grad()
            d_loss = self.d_loss(self, real, y_real, fake, y_fake)
            d_loss.backward()
            self.opt_d.step()

        # --- G: a second forward of G on fresh noise; D is not frozen (typical)
        z = torch.randn(B, self.z_dim)
        y_gen = self._fake_labels(B)
        self.opt_g.zero_grad()
        g_loss = self.g_loss(self, self.G(z, y_gen), y_gen)
        g_loss.backward()
        self.opt_g.step()

    def run(self, steps: int) -> float:
        """Run ``steps`` steps; returns their wall time in seconds."""
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - t0

    def images_per_step(self) -> int:
        """Real images consumed per step (``n_critic`` D steps per G step)."""
        return self.batch_size * self.n_critic

    # ------------------------------------------------------------------------- timed training
    def train_for(self, minutes: float, save_minutes: list[float], folder: Path) -> dict[str, Any]:
        """Train for ``minutes`` of wall clock, saving G when the clock first passes each of
        ``save_minutes`` (``checkpoints/min_<m>``) and at the end (``step_*``), as ganforge's
        trainer does with ``log.checkpoint_minutes``; ``folder`` gets ``config.json`` too, so
        ``load_run`` and ``evaluate`` read it like a run folder.

        Returns:
            steps, images_per_s (real images consumed per second of training) and train_s.
        """
        fileio.ensure_dir(folder)
        fileio.write_text(folder / "config.json", self.cfg.to_json() + "\n")
        pending = sorted(save_minutes)
        start = time.perf_counter()
        while True:
            clock = time.perf_counter() - start  # one reading: saves and budget agree
            while pending and clock >= pending[0] * 60:
                self.save(folder, clock, f"min_{pending.pop(0):g}")
            if clock >= minutes * 60:
                break
            self.step()
            self.steps += 1
        elapsed = time.perf_counter() - start
        self.save(folder, elapsed)
        return {"steps": self.steps, "train_s": round(elapsed, 3),
                "images_per_s": round(self.steps * self.images_per_step() / elapsed, 2)}

    def model_record(self) -> dict[str, Any]:
        """What ``load_run`` needs to rebuild G (the record ganforge's trainer saves)."""
        return {"arch": self.cfg.model.arch, "model_args": self.model_args,
                "conditional": self.conditional,
                "n_classes": self.n_classes if self.conditional else 0, "multi_label": False,
                "class_names": [str(c) for c in range(self.n_classes)],
                "data_shape": list(self.shape), "z_dim": self.z_dim, "z_dist": "normal",
                "z_mean": 0.0, "dataset": "mnist", "scaling": None}

    def save(self, folder: Path, elapsed_s: float, label: Optional[str] = None) -> Path:
        """G's weights as a ganforge checkpoint (``checkpoints/<label>`` or ``step_<n>``)."""
        from ganforge.run.checkpoint import save_checkpoint

        meta = {"config": self.cfg.to_dict(), "model": self.model_record(),
                "elapsed_s": elapsed_s, "typical_loop": True}
        return save_checkpoint(folder, self.steps, {"G": self.G}, {}, meta, keep=1, label=label)


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
        cfg = resolve(preset)
        loop = BaselineGAN(cfg, int(sys.argv[2]) if len(sys.argv) > 2 else None)
    loop.run(3)
    dt = loop.run(20)
    print(f"{preset} B={loop.batch_size}: {20 * loop.images_per_step() / dt:.0f} images/s "
          "(baseline, 2 threads)")
