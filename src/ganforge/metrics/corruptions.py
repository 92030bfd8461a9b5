"""The artefacts young generators make, as image corruptions for training and testing evaluators.

A domain evaluator trained on clean images reads a legible but noisy generated digit as another
class (speckled 0s and 6s become 8s), so its label accuracy measures the noise, not the digit.
These functions apply such artefacts to real images, so ``train-evaluator`` can learn to ignore
them (:class:`CorruptionMix`) and report how well it does (:func:`suite_accuracy`).

Every corruption is a registered function ``fn(x, severity, gen) -> x`` on a batch:

- ``x``: (N, C, H, W) float images in [-1, 1], on any device; the result has the same shape,
  dtype and device and stays in [-1, 1];
- ``severity``: a float or an (N,) tensor in [0, 1], one per image; 0 leaves the image
  unchanged and 1 is the strongest level used in training, still legible to a person;
- ``gen``: a ``torch.Generator`` on ``x.device``; the same seed gives the same result.

All of a batch is corrupted at once on its device (no per-image Python loop).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.registry import Registry

Corruption = Callable[[torch.Tensor, "torch.Tensor | float", torch.Generator], torch.Tensor]
CORRUPTIONS: Registry[Corruption] = Registry("corruption")

# The held-out suite: each corruption alone at one fixed severity, chosen so the artefact is
# plainly visible on a 28 px digit and the digit stays legible (see tests/metrics/test_corruptions).
SUITE: dict[str, float] = {
    "affine": 0.5, "elastic": 0.7, "thickness": 0.8, "blur": 0.7, "contrast": 0.7,
    "brightness": 0.6, "haze": 0.7, "speckle": 0.7, "grain": 0.7, "gaussian-noise": 0.6,
    "salt-pepper": 0.6,
}
SUITE_SEED = 20_240_613  # the suite's noise is the same for every evaluator and every run


def _corruption(name: str) -> Callable[[Corruption], Corruption]:
    """Register a corruption under ``name``. An empty batch passes through (grid sampling and
    grouped convolutions reject zero-size inputs); results are clamped to [-1, 1], since
    resampling and blurring can round a hair past the range."""
    def deco(fn: Corruption) -> Corruption:
        @functools.wraps(fn)
        def wrapped(x: torch.Tensor, severity: torch.Tensor | float,
                    gen: torch.Generator) -> torch.Tensor:
            return x.clone() if x.shape[0] == 0 else fn(x, severity, gen).clamp(-1, 1)

        return CORRUPTIONS.register(name)(wrapped)

    return deco


def _severity(severity: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1, 1) per-image severity on ``x``'s device, checked to lie in [0, 1]."""
    s = torch.as_tensor(severity, dtype=x.dtype, device=x.device)
    if s.dim() == 0:
        s = s.expand(x.shape[0])
    if s.shape != (x.shape[0],):
        raise ConfigError(f"severity must be a number or one per image ({x.shape[0]}), got shape "
                          f"{tuple(s.shape)}")
    if s.numel() and (s.min() < 0 or s.max() > 1):
        raise ConfigError(f"severity must lie in [0, 1], got {s.min().item():g}.."
                          f"{s.max().item():g}")
    return s.view(-1, 1, 1, 1)


def _uniform(shape: tuple[int, ...], gen: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=x.device, dtype=x.dtype)


def _sign(n: int, gen: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1, 1) random +1 / -1 per image."""
    return (_uniform((n,), gen, x) < 0.5).to(x.dtype).mul(2).sub(1).view(-1, 1, 1, 1)


def gaussian_smooth(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) ``x`` with a per-image ``sigma`` in pixels.

    Args:
        sigma: a float or (N,) tensor; sigma 0 returns the image unchanged.

    Returns:
        (N, C, H, W); edges are replicated, so a dark background stays dark at the border.
    """
    n, c, h, w = x.shape
    sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(n).clamp_min(1e-3)
    radius = max(1, math.ceil(3 * float(sig.max())))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps[None] / sig[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, K)
    # One grouped conv per axis: every (image, channel) plane has its own kernel.
    planes = F.pad(x.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    planes = F.conv2d(planes, kernel[:, None, :, None], groups=n * c)
    planes = F.conv2d(planes, kernel[:, None, None, :], groups=n * c)
    return planes.reshape(n, c, h, w)


def _identity_grid(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 2) sampling grid that reproduces ``x`` under ``grid_sample``."""
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
    return F.affine_grid(theta, list(x.shape), align_corners=False)


def _resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    # Border padding: the borders of digit-like images are background, so replicating them
    # brings in no new strokes.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float = 10.0,
                  shift: float = 0.1, scale: float = 0.1,
                  severity: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Random small rotation, shift and zoom of each image of a batch, all at once on its device.

    Args:
        x: (N, C, H, W) float images; gen: a generator on ``x.device``.
        degrees / shift / scale: largest rotation, shift (fraction of the side) and zoom.
        severity: float or (N,) in [0, 1], scales the three ranges per image.

    Returns:
        (N, C, H, W) float, resampled bilinearly.
    """
    n = x.shape[0]
    s = _severity(severity, x).view(-1, 1)
    u = (_uniform((n, 4), gen, x) * 2 - 1) * s  # uniform in [-s, s]
    angle = u[:, 0] * math.radians(degrees)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output to input coordinates in [-1, 1], so a shift of s of the side is 2s.
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * 2 * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * 2 * shift], 1)], 1)
    return _resample(x, F.affine_grid(theta, list(x.shape), align_corners=False))


@_corruption("affine")
def affine(x: torch.Tensor, severity: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """Rotation up to 12 degrees, shift up to 10% of the side, zoom up to 12% (at severity 1)."""
    return random_affine(x, gen, degrees=12.0, shift=0.1, scale=0.12, severity=severity)


@_corruption("elastic")
def elastic(x: torch.Tensor, severity: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """Smooth random warp (wobbly strokes): RMS displacement 1.2 px of a 28 px side at severity 1
    (scaled with the image side), varying over ~7 px."""
    n, _, h, w = x.shape
    s = _severity(severity, x)
    # Random displacements on a coarse grid (one node per ~7 px), interpolated: as smooth as a
    # Gaussian-filtered noise field, at a fraction of the cost.
    nodes = (max(2, round(h / 7)), max(2, round(w / 7)))
    field = F.interpolate(_uniform((n, 2, *nodes), gen, x) * 2 - 1, size=(h, w),
                          mode="bicubic", align_corners=False)
    field = field / field.pow(2).mean((1, 2, 3), keepdim=True).sqrt().clamp_min(1e-8)
    pixels = field * s * 1.2 * h / 28  # (N, 2, H, W) displacement in pixels, x then y
    step = torch.tensor([2.0 / w, 2.0 / h], dtype=x.dtype, device=x.device)
    return _resample(x, _identity_grid(x) + pixels.permute(0, 2, 3, 1) * step)


@_corruption("thickness")
def thickness(x: torch.Tensor, severity: torch.Tensor | float,
              gen: torch.Generator) -> torch.Tensor:
    """Bolder or thinner strokes: a blend towards a 3x3 dilation (up to fully, at severity 1) or
    erosion (up to 60%, since a full erosion breaks thin strokes), chosen per image."""
    s = _severity(severity, x)
    grow = _sign(x.shape[0], gen, x) > 0
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(grow, x + s * (dilated - x), x + 0.6 * s * (eroded - x))


# --------------------------------------------------------------------------------------------
# Sharpness and levels
# --------------------------------------------------------------------------------------------

@_corruption("blur")
def blur(x: torch.Tensor, severity: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur, sigma up to 1.2 px of a 28 px side (soft, smeared strokes)."""
    return gaussian_smooth(x, _severity(severity, x).flatten() * 1.2 * x.shape[-2] / 28)


@_corruption("contrast")
def contrast(x: torch.Tensor, severity: torch.Tensor | float,
             gen: torch.Generator) -> torch.Tensor:
    """Washed-out image: contrast around the image mean lowered to 40% (grey background, dim
    strokes)."""
    s = _severity(severity, x)
    mean = x.mean((1, 2, 3), keepdim=True)
    return mean + (1 - 0.6 * s) * (x - mean)


@_corruption("brightness")
def brightness(x: torch.Tensor, severity: torch.Tensor | float,
               gen: torch.Generator) -> torch.Tensor:
    """Brighter or darker image: a shift of up to a quarter of the range, sign per image."""
    shift = 0.5 * _severity(severity, x) * _sign(x.shape[0], gen, x)
    return (x + shift).clamp(-1, 1)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------

@_corruption("haze")
def haze(x: torch.Tensor, severity: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """Faint grey smudges on the background: a smooth random field (a 4x4 grid of random levels,
    upsampled) up to 35% of the range, taken where it is brighter than the image."""
    n, _, h, w = x.shape
    coarse = _uniform((n, 1, 4, 4), gen, x)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    level = -1 + 2 * 0.35 * _severity(severity, x) * field
    return torch.maximum(x, level)


@_corruption("speckle")
def speckle(x: torch.Tensor, severity: torch.Tensor | float,
            gen: torch.Generator) -> torch.Tensor:
    """Multiplicative noise on the brightness (noisy strokes, clean background): each pixel's
    level in [0, 1] times (1 + 0.6 severity * N(0, 1))."""
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    level = (x + 1) / 2
    level = level * (1 + 0.6 * _severity(severity, x) * noise)
    return (level * 2 - 1).clamp(-1, 1)


@_corruption("grain")
def grain(x: torch.Tensor, severity: torch.Tensor | float, gen: torch.Generator) -> torch.Tensor:
    """The grain of a young MLP generator: holes in the strokes and specks around them. Up to
    30% of stroke pixels (brighter than mid-range) drop to the background level and up to 20% of
    the pixels within 2 px of a stroke light up to a random level, at severity 1."""
    n, _, h, w = x.shape
    s = _severity(severity, x)
    stroke = (x.amax(1, keepdim=True) > 0).to(x.dtype)
    near = F.max_pool2d(stroke, 5, stride=1, padding=2) - stroke
    r, level = _uniform((n, 1, h, w), gen, x), _uniform((n, 1, h, w), gen, x)
    holes = (stroke > 0) & (r < 0.3 * s)
    specks = (near > 0) & (r < 0.2 * s)
    out = torch.where(holes, torch.full_like(x, -1.0), x)
    return torch.where(specks, torch.maximum(out, level * 2 - 1), out)


@_corruption("gaussian-noise")
def gaussian_noise(x: torch.Tensor, severity: torch.Tensor | float,
                   gen: torch.Generator) -> torch.Tensor:
    """Additive Gaussian noise, std up to 0.4 (a fifth of the range), clipped to [-1, 1]: grey
    specks over the background, as a young MLP generator leaves them."""
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return (x + 0.4 * _severity(severity, x) * noise).clamp(-1, 1)


@_corruption("salt-pepper")
def salt_pepper(x: torch.Tensor, severity: torch.Tensor | float,
                gen: torch.Generator) -> torch.Tensor:
    """Up to 6% of the pixels (all channels of each) set to white or black, half each."""
    n, _, h, w = x.shape
    density = 0.06 * _severity(severity, x)
    r = _uniform((n, 1, h, w), gen, x)
    out = torch.where(r < density / 2, torch.ones_like(x), x)
    return torch.where((r >= density / 2) & (r < density), -torch.ones_like(x), out)


# --------------------------------------------------------------------------------------------
# Training mix and held-out suite
# --------------------------------------------------------------------------------------------

# Order of application: geometry first, then sharpness and levels, then the noise a generator
# leaves on its final pixels.
ORDER = ("affine", "elastic", "thickness", "blur", "contrast", "brightness", "haze", "speckle",
         "grain", "gaussian-noise", "salt-pepper")


class CorruptionMix:
    """Training augmentation: a random mix of corruptions, drawn anew for every image.

    Every image gets a random affine (severity uniform in [0, 1]); a share ``clean`` of the
    batch gets nothing else, and each other image gets each remaining corruption with
    probability ``p``, at a severity drawn uniformly in [0, 1].

    Args:
        p: probability of each non-affine corruption for a corrupted image.
        clean: share of images left with the affine only, so clean accuracy is kept.
        names: the corruptions to draw from (default: all registered, in :data:`ORDER`).
    """

    def __init__(self, p: float = 0.25, clean: float = 0.3,
                 names: Optional[list[str]] = None) -> None:
        if not 0 <= p <= 1 or not 0 <= clean <= 1:
            raise ConfigError(f"corruption mix p={p} and clean={clean} must lie in [0, 1]")
        names = list(ORDER) if names is None else list(names)
        for name in names:
            CORRUPTIONS.get(name)  # an unknown name fails here, listing the valid ones
        self.p, self.clean, self.names = p, clean, [n for n in ORDER if n in names]

    def describe(self) -> dict[str, object]:
        """The mix as JSON-able settings (stored with the evaluator)."""
        return {"p": self.p, "clean": self.clean, "corruptions": self.names,
                "affine_on_every_image": "affine" in self.names}

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Corrupt a training batch (N, C, H, W) in [-1, 1]; ``gen`` on ``x.device``."""
        n = x.shape[0]
        corrupted = _uniform((n,), gen, x) >= self.clean
        for name in self.names:
            severity = _uniform((n,), gen, x)
            chosen = _uniform((n,), gen, x) < self.p
            if name == "affine":
                x = CORRUPTIONS.get(name)(x, severity, gen)
                continue
            pick = (corrupted & chosen).view(-1, 1, 1, 1)
            x = torch.where(pick, CORRUPTIONS.get(name)(x, severity, gen), x)
        return x


def apply_suite(x: torch.Tensor, name: str, seed: int = SUITE_SEED) -> torch.Tensor:
    """The held-out suite's version of ``x`` (N, C, H, W) under corruption ``name``: its
    :data:`SUITE` severity, noise drawn from ``seed`` and the corruption's place in the suite,
    so every evaluator is tested on the very same corrupted images."""
    gen = torch.Generator(x.device).manual_seed(seed + list(SUITE).index(name))
    return CORRUPTIONS.get(name)(x, SUITE[name], gen)


@torch.no_grad()
def suite_accuracy(classify: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor, batch: int = 500, seed: int = SUITE_SEED
                   ) -> dict[str, float]:
    """Accuracy of ``classify`` on held-out images under each suite corruption, and their mean.

    Args:
        classify: maps (B, C, H, W) float images in [-1, 1] to (B,) predicted classes.
        x: (N, C, H, W) uint8 images or float in [-1, 1]; y: (N,) labels.
        batch: images corrupted and classified at a time (the noise depends on it, so the
            suite fixes it).

    Returns:
        ``{corruption: accuracy, ..., "mean": mean over the corruptions}``.
    """
    out: dict[str, float] = {}
    y = y.cpu()
    for name in SUITE:
        right = 0
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            xb = xb.float().div(127.5).sub(1) if xb.dtype == torch.uint8 else xb.float()
            pred = classify(apply_suite(xb, name, seed + i)).cpu()
            right += int((pred == y[i:i + batch]).sum())
        out[name] = right / max(len(x), 1)
    out["mean"] = sum(out.values()) / len(SUITE)
    return out
