"""The "typical implementation" ganforge is measured against: the training loop of most PyTorch
GAN tutorials and of the PyTorch-GAN scripts the seed documents were copied from, written here
from scratch on ganforge's public API only.

* Data the torchvision way: an in-memory uint8 array served one ``PIL.Image`` per item, through
  ``Compose([ToTensor(), Normalize(0.5, 0.5)])``, collated by ``DataLoader(shuffle=True,
  drop_last=True, num_workers=0)``.
* A D step on the real batch and on ``G(z).detach()``, then a *second* forward of G on fresh
  noise for the G step; D is not frozen during the G step.
* ``BCEWithLogits`` (GAN, cGAN), acgan.py's objective (BCE plus the class head's cross-entropy
  on real and fake) or wgan_gp.py's (critic scores, a gradient penalty on interpolates,
  ``n_critic`` critic steps per G step); plain ``torch.optim.Adam``.

Only the loop and the data path differ from ganforge: G and D are the preset's own nets
(:func:`ganforge.api.build_networks` with ``plain=True``: stock ``nn.Dropout``), so the arithmetic
per image is the same. :data:`TYPICAL` names the four loops the quality benchmark trains, and
:meth:`TypicalLoop.train_for` trains one for a wall-clock or step budget, saving G as ganforge
checkpoints (:func:`ganforge.api.save_generator`) so that it is scored like any run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganforge import api
from ganforge.config import Config, resolve


class ArrayPIL(Dataset):
    """A uint8 image set served as torchvision's datasets serve theirs: a PIL image (mode "L" or
    "RGB") and an int label per item.

    Args:
        images: (N, C, H, W) uint8, C = 1 or 3.
        labels: (N,) int64 class indices, or None (every label is 0).
        transform: applied to every PIL image.
    """

    def __init__(self, images: torch.Tensor, labels: Optional[torch.Tensor],
                 transform: Any = None) -> None:
        hwc = images.permute(0, 2, 3, 1).contiguous().numpy()  # PIL wants H x W (x C)
        self.images = hwc[..., 0] if hwc.shape[-1] == 1 else hwc
        self.labels = (np.zeros(len(hwc), np.int64) if labels is None
                       else labels.numpy().astype(np.int64))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = Image.fromarray(self.images[index])
        return (self.transform(img) if self.transform is not None else img,
                int(self.labels[index]))


def standard_transform(channels: int = 1) -> transforms.Compose:
    """The per-sample transform of the tutorials: [0, 255] -> [-1, 1] per channel."""
    half = [0.5] * channels
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(half, half)])


# ----------------------------------------------------------------------------- objectives

def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _d_bce(loop: "TypicalLoop", real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor,
           y_fake: Optional[torch.Tensor]) -> torch.Tensor:
    return (_bce(loop.D(real, loop.labels(y_real)).adv, 1.0)
            + _bce(loop.D(fake, y_fake).adv, 0.0)) / 2


def _g_bce(loop: "TypicalLoop", fake: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    return _bce(loop.D(fake, y).adv, 1.0)


def _d_acgan(loop: "TypicalLoop", real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor,
             y_fake: torch.Tensor) -> torch.Tensor:
    """acgan.py's D: (adversarial + class loss) on reals and on fakes, each halved, averaged."""
    out_r, out_f = loop.D(real, y_real), loop.D(fake, y_fake)
    return ((_bce(out_r.adv, 1.0) + F.cross_entropy(out_r.cls, y_real)) / 2
            + (_bce(out_f.adv, 0.0) + F.cross_entropy(out_f.cls, y_fake)) / 2) / 2


def _g_acgan(loop: "TypicalLoop", fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = loop.D(fake, y)
    return (_bce(out.adv, 1.0) + F.cross_entropy(out.cls, y)) / 2


def _d_wgan_gp(loop: "TypicalLoop", real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor,
               y_fake: Optional[torch.Tensor]) -> torch.Tensor:
    """E[D(fake)] - E[D(real)] + lambda E[(|grad D(x_hat)| - 1)^2], x_hat uniformly on the
    segment between a real and a fake image."""
    y = loop.labels(y_real)
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)))
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(loop.D(x_hat, y).adv.sum(), x_hat, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return loop.D(fake, y_fake).adv.mean() - loop.D(real, y).adv.mean() + loop.gp_weight * penalty


def _g_wgan(loop: "TypicalLoop", fake: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    return -loop.D(fake, y).adv.mean()


Objective = tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]
# name -> (D loss, G loss), each a function of the loop and its batches.
OBJECTIVES: dict[str, Objective] = {"bce": (_d_bce, _g_bce), "acgan": (_d_acgan, _g_acgan),
                                    "wgan-gp": (_d_wgan_gp, _g_wgan)}


# ----------------------------------------------------------------------------- the loops

@dataclass(frozen=True)
class Typical:
    """One typical training script: its nets (a preset plus overrides), objective and critic
    steps. Only the model, ``optim`` and ``train.batch_size`` settings matter to the loop."""

    about: str
    preset: str
    overrides: tuple[str, ...]
    objective: str = "bce"
    n_critic: int = 1

    def config(self, data: tuple[str, ...] = ()) -> Config:
        """The loop's config on MNIST, or on the data the ``data.*`` overrides ``data`` name."""
        return resolve(self.preset or None,
                       overrides=("data.name=mnist",) + self.overrides + tuple(data))


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


class TypicalLoop:
    """A plain PyTorch GAN training loop on a preset's nets.

    Args:
        cfg: a resolved config; its model, optimiser (lr, betas, eps) and batch size are used.
        data: :func:`ganforge.api.load_dataset`'s tensors (``x`` (N, C, H, W) uint8, ``y``).
        seed: seeds torch for the nets, the noise and the DataLoader's shuffle.
        objective: a key of :data:`OBJECTIVES`.
        n_critic: D steps, each on its own real batch, per G step.
        batch_size: B; defaults to ``cfg.train.batch_size``.
        gp_weight: lambda of the WGAN-GP penalty.
    """

    def __init__(self, cfg: Config, data: Any, seed: int = 0, objective: str = "bce",
                 n_critic: int = 1, batch_size: Optional[int] = None,
                 gp_weight: float = 10.0) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective '{objective}'; use one of {sorted(OBJECTIVES)}")
        torch.manual_seed(seed)
        self.batch_size, self.n_critic = batch_size or cfg.train.batch_size, n_critic
        self.gp_weight = gp_weight
        self.z_dim, self.conditional = cfg.model.z_dim, cfg.model.conditional
        self.n_classes = max(int(data.n_classes), 1)
        self.d_loss, self.g_loss = OBJECTIVES[objective]
        self.nets = api.build_networks(cfg, data, plain=True)
        self.G, self.D = self.nets.G.train(), self.nets.D.train()
        self.loader = DataLoader(ArrayPIL(data.x, data.y, standard_transform(data.x.shape[1])),
                                 batch_size=self.batch_size, shuffle=True, drop_last=True,
                                 num_workers=0)
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=tuple(o.betas),
                                      eps=o.eps)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas),
                                      eps=o.eps)
        self._it: Iterator = iter(self.loader)
        self.steps = 0  # G steps taken

    def labels(self, y: torch.Tensor) -> Optional[torch.Tensor]:
        """The real batch's labels as D takes them (None for an unconditional loop)."""
        return y if self.conditional else None

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (images, labels), starting a new epoch when the loader runs out."""
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            return next(self._it)

    def _fake_labels(self, B: int) -> Optional[torch.Tensor]:
        return torch.randint(0, self.n_classes, (B,)) if self.conditional else None

    def step(self) -> None:
        """``n_critic`` D steps and one G step, the way the tutorials write them."""
        for _ in range(self.n_critic):
            real, y_real = self.next_batch()
            B = real.shape[0]
            y_fake = self._fake_labels(B)
            fake = self.G(torch.randn(B, self.z_dim), y_fake).detach()
            self.opt_d.zero_grad()
            self.d_loss(self, real, y_real, fake, y_fake).backward()
            self.opt_d.step()
        y_gen = self._fake_labels(B)  # a second forward of G on fresh noise; D not frozen
        self.opt_g.zero_grad()
        self.g_loss(self, self.G(torch.randn(B, self.z_dim), y_gen), y_gen).backward()
        self.opt_g.step()
        self.steps += 1

    def images_per_step(self) -> int:
        """Real images consumed per G step."""
        return self.batch_size * self.n_critic

    def train_for(self, folder: Path, minutes: Optional[float] = None,
                  steps: Optional[int] = None, save_minutes: tuple[float, ...] = ()
                  ) -> dict[str, Any]:
        """Train until ``minutes`` of wall clock or ``steps`` G steps, saving G when the clock
        first passes each of ``save_minutes`` (``checkpoints/min_<m>``, as ganforge's
        ``log.checkpoint_minutes``) and at the end, into the run folder ``folder``.

        Returns:
            ``steps``, ``train_s`` and ``images_per_s`` (real images consumed per second).
        """
        pending = sorted(save_minutes)
        start = time.perf_counter()
        while True:
            clock = time.perf_counter() - start  # one reading: the saves and the budget agree
            while pending and clock >= pending[0] * 60:
                api.save_generator(folder, self.nets, self.steps, clock,
                                   f"min_{pending.pop(0):g}", {"typical_loop": True})
            if (minutes is not None and clock >= minutes * 60) or \
                    (steps is not None and self.steps >= steps):
                break
            self.step()
        elapsed = time.perf_counter() - start
        api.save_generator(folder, self.nets, self.steps, elapsed, meta={"typical_loop": True})
        return {"steps": self.steps, "train_s": round(elapsed, 3),
                "images_per_s": round(self.steps * self.images_per_step() / elapsed, 2)}


def build_typical(name: str, seed: int, data: Any, cfg: Optional[Config] = None) -> TypicalLoop:
    """The typical loop ``name`` (a key of :data:`TYPICAL`) on ``data``; ``cfg``: its config
    when already resolved (:meth:`Typical.config`)."""
    spec = TYPICAL[name]
    return TypicalLoop(cfg or spec.config(), data, seed, spec.objective, spec.n_critic)
