"""Gaussian Parzen-window log-likelihood (``parzen``), the estimate of Goodfellow et al. (2014).

A Gaussian kernel density is fit to the generated samples s_1..s_N (pixels scaled to [0, 1]
and flattened; toy points as they are) and real test images x are scored under it::

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - (D / 2) log(2 pi sigma^2)

The reported value is the mean log p over the test images (nats, higher is better) with its
standard error std / sqrt(n) (population std, as the original evaluation script computes it).
The bandwidth sigma is the point of a log-spaced grid that maximises the mean log-likelihood of
a separate validation set. Mirza & Osindero (2014, Table 1) report this number for MNIST (cGAN
132 +- 1.8, GAN 225 +- 2) as a proof of concept. In 784 dimensions it is a rough estimate, far
from a model's true log-likelihood and able to rank models wrongly (Theis et al., 2016), so
compare it only between runs scored under the same protocol.

Protocol here (``parzen<n>_<dataset>``, e.g. ``parzen10k_mnist``):

* samples: all ``N`` samples of the context; a conditional model's samples are pooled, so the
  density is that of the whole generator (10,000 drawn cycling through 10 classes gives 1,000
  per class, as in the paper). Saved samples are uint8, so pixels are multiples of 1/255.
* real data: the reference split the user gives, shuffled with the context's seed and cut into
  a validation part (``n_val``, default 1,000, at most a tenth of a small split, at least 10)
  used only to choose sigma and a disjoint test part (the next ``n_test``: ``--n-real`` or
  10,000) that is scored. With the 10,000-image MNIST test split that is 1,000 + 9,000.
* sigma grid: 20 values log-spaced over 0.05..1.0 for images (pixel units); for toy points
  0.002..1.0 times the reference's per-coordinate std. A sigma at the grid's edge is flagged.

The paper's protocol differs: the generator was trained on MNIST's first 50,000 training
images, sigma was chosen on the other 10,000 (the released evaluation script takes 1,000 of
them and a 10-point grid over 0.1..1.0) and the 10,000-image test split was scored. Here both
parts come from whatever reference split the user names; numbers are comparable with the
paper's only when the scored images are MNIST digits the generator never saw.

Cost: distances by the expansion |x|^2 + |s|^2 - 2 x.s, one matrix product per block of
queries, reused for every sigma of the grid. 10,000 samples x 10,000 test images x 784 pixels
(plus the 20-sigma choice on 1,000) costs about 8 CPU-seconds, well under a minute on two cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from ganforge.data.vectors import destandardize
from ganforge.errors import ConfigError
from ganforge.metrics.base import METRICS, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.formulas import TooFewSamples
from ganforge.metrics.reference_files import load_reference
from ganforge.settings import optional, positive, setting

N_VAL = 1000           # validation images that choose sigma (the original script's default)
N_TEST = 10_000        # test images scored (the paper's test split)
MIN_VAL = 10           # fewest validation images for a sigma choice worth the name
MIN_TEST = 10          # fewest test images for a mean with a standard error
QUERY_BLOCK = 512      # query rows per distance block
SAMPLE_BLOCK = 16_384  # sample columns per block: with QUERY_BLOCK, <= 34 MB per float32 block
# Exponents below this add < N e^-80 relative to the largest kernel (which is 1 after the shift);
# clamping them avoids float32 denormals, whose exp is ~10x slower on CPUs.
EXP_FLOOR = -80.0

# (lowest, highest, count) of the log-spaced sigma grid. Images: pixel units in [0, 1].
# Points: times the reference's per-coordinate std, reaching down to sharp mixture modes.
GRIDS = {"images": (0.05, 1.0, 20), "points": (0.002, 1.0, 28)}


# --------------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------------

def sigma_grid(low: float, high: float, count: int) -> torch.Tensor:
    """(count,) float64 bandwidths log-spaced from ``low`` to ``high`` (both included)."""
    if not 0 < low <= high or count < 1:
        raise ConfigError(f"parzen sigma grid needs 0 < low <= high and count >= 1, got "
                          f"({low}, {high}, {count})")
    return torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)


def _log_kernel_sums(xb: torch.Tensor, s: torch.Tensor, s_sq: torch.Tensor,
                     scales: torch.Tensor) -> torch.Tensor:
    """logsumexp_i(-scale * ||x - s_i||^2) of one block, for every scale; (B, S) float64.

    One matrix product gives the (B, Ns) squared distances; every scale reuses them. Each row is
    shifted by its smallest distance, so the largest term is exp(0) = 1 and a point far from
    all samples still gets a finite value (the shift is added back in float64).
    """
    d2 = torch.addmm(s_sq[None, :], xb, s.T, alpha=-2.0)
    d2.add_((xb * xb).sum(dim=1, keepdim=True)).clamp_(min=0)  # rounding leaves tiny negatives
    d_min = d2.min(dim=1, keepdim=True).values
    d2.sub_(d_min)
    buf = torch.empty_like(d2)
    out = torch.empty(xb.shape[0], len(scales), dtype=torch.float64)
    for j, scale in enumerate(scales.tolist()):
        torch.mul(d2, -scale, out=buf).clamp_(min=EXP_FLOOR).exp_()
        out[:, j] = buf.sum(dim=1, dtype=torch.float64).log_() - scale * d_min[:, 0].double()
    return out


def parzen_log_density(x: torch.Tensor, samples: torch.Tensor,
                       sigmas: float | Sequence[float] | torch.Tensor,
                       block: int = QUERY_BLOCK, sample_block: int = SAMPLE_BLOCK,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Log-density of points under the Gaussian KDE of ``samples``, for several bandwidths.

    Args:
        x: (M, D) query points.
        samples: (N, D) kernel centres.
        sigmas: one bandwidth or (S,) bandwidths, all > 0.
        block: query rows per distance block (bounds memory, not the result).
        sample_block: kernel centres per block; blocks are merged by log-add-exp in float64.
        dtype: precision of the distances. float32 (default) halves the matrix product's cost;
            both sets are centred on the samples' mean first, which keeps the expansion's
            cancellation small (float64 is exact to ~1e-12).

    Returns:
        (M, S) float64 log p(x) in nats (S = 1 for a single sigma).
    """
    if x.dim() != 2 or samples.dim() != 2 or x.shape[1] != samples.shape[1]:
        raise ValueError(f"parzen needs (M, D) points and (N, D) samples with equal D, got "
                         f"{tuple(x.shape)} and {tuple(samples.shape)}")
    if samples.shape[0] == 0 or x.shape[0] == 0:
        raise TooFewSamples("parzen needs at least one sample and one point to score; "
                            "use a larger --n")
    sig = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    if sig.numel() == 0 or not bool((sig > 0).all()):
        raise ConfigError(f"parzen bandwidths must be positive, got {sig.tolist()}")
    n, dims = samples.shape
    centre = samples.to(torch.float64).mean(dim=0)
    s = (samples.to(torch.float64) - centre).to(dtype)
    xc = (x.to(torch.float64) - centre).to(dtype)
    scales = 0.5 / sig**2
    total = torch.full((x.shape[0], len(sig)), -math.inf, dtype=torch.float64)
    for k in range(0, n, sample_block):
        sk = s[k:k + sample_block]
        sk_sq = (sk * sk).sum(dim=1)
        for i in range(0, x.shape[0], block):
            part = _log_kernel_sums(xc[i:i + block], sk, sk_sq, scales)
            torch.logaddexp(total[i:i + block], part, out=total[i:i + block])
    return total - math.log(n) - 0.5 * dims * torch.log(2 * math.pi * sig**2)


def mean_and_stderr(log_p: torch.Tensor) -> tuple[float, float]:
    """Mean of (M,) log-likelihoods and its standard error std / sqrt(M) (population std)."""
    if log_p.numel() < 2:
        raise TooFewSamples(f"a standard error needs at least 2 test points, got {log_p.numel()}")
    v = log_p.to(torch.float64)
    return float(v.mean()), float(v.std(unbiased=False) / math.sqrt(v.numel()))


def select_sigma(samples: torch.Tensor, val: torch.Tensor, sigmas: torch.Tensor,
                 **kwargs: Any) -> tuple[float, torch.Tensor]:
    """The bandwidth of ``sigmas`` with the highest mean validation log-likelihood.

    Args:
        samples: (N, D) kernel centres.
        val: (M, D) validation points (never the points that are scored afterwards).
        sigmas: (S,) candidate bandwidths.
        **kwargs: block sizes and dtype for :func:`parzen_log_density`.

    Returns:
        (chosen sigma, (S,) float64 mean validation log-likelihood of each candidate).
    """
    scores = parzen_log_density(val, samples, sigmas, **kwargs).mean(dim=0)
    sig = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    return float(sig[int(scores.argmax())]), scores


# --------------------------------------------------------------------------------------------
# The registered metric
# --------------------------------------------------------------------------------------------

def as_points(x: torch.Tensor, what: str) -> torch.Tensor:
    """(N, C, H, W) uint8 images -> (N, C*H*W) float32 in [0, 1]; (N, D) points -> float32."""
    if x.dim() == 4:
        if x.dtype != torch.uint8:
            raise ConfigError(f"parzen needs uint8 images, got {what} of dtype {x.dtype}")
        return x.flatten(1).float().div_(255.0)
    if x.dim() == 2:
        return x.float()
    raise ConfigError(f"parzen needs (N, C, H, W) images or (N, D) points, got {what} of shape "
                      f"{tuple(x.shape)}")


def split_sizes(available: int, n_val: int, n_test: int) -> tuple[int, int]:
    """(validation, test) counts taken from ``available`` shuffled reference images.

    Validation gets ``n_val`` but at most a tenth of the split (at least MIN_VAL); the test part
    gets the next ``n_test`` or what is left.
    """
    if n_val < 1 or n_test < 2:
        raise ConfigError(f"parzen needs n_val >= 1 and n_test >= 2, got {n_val} and {n_test}")
    val = min(n_val, max(MIN_VAL, available // 10))
    test = min(n_test, available - val)
    if test < min(MIN_TEST, n_test):
        raise TooFewSamples(f"parzen needs at least {val + min(MIN_TEST, n_test)} reference "
                            f"images ({val} to choose sigma + the test set), the reference has "
                            f"{available}; use a larger split or drop data.limit")
    return val, test


def reference_split(ctx: EvalContext, n_val: int, n_test: int) -> dict[str, Any]:
    """The reference data as disjoint validation and test points, built once per context.

    Returns:
        {"val": (V, D) float32, "test": (T, D) float32, "source": str, "available": int,
        "image": bool}. The split is a permutation seeded by ``ctx.seed``.
    """
    key = f"parzen-ref:{n_val}:{n_test}"
    if key not in ctx._memo:
        if ctx.reference is None:
            raise ConfigError("parzen scores real images: pass --dataset (and --data-root / "
                              "--split) with images the generator was not trained on")
        data = load_reference(ctx.reference)  # a dataset, or --reference files
        v, t = split_sizes(len(data), n_val, n_test)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(ctx.seed))
        x = data.x
        if not data.is_image:  # vectors in the data's own units, as Run.generate returns them
            x = destandardize(x, (data.extra.get("scaling") or {}).get("x"))
        ctx._memo[key] = {"val": as_points(x[order[:v]], "reference images"),
                          "test": as_points(x[order[v:v + t]], "reference images"),
                          "source": data.source, "available": len(data),
                          "image": data.is_image, "shape": tuple(x.shape[1:])}
    return ctx._memo[key]


@dataclass
class ParzenSettings:
    n_val: int = setting(N_VAL, "held-out real images that choose the window width sigma",
                         check=positive())
    n_test: Optional[int] = setting(None, "held-out real images scored; none: all the rest",
                                    check=optional(positive()))


@METRICS.register("parzen", settings=ParzenSettings)
def parzen_metric(ctx: EvalContext, n_val: int = N_VAL, n_test: Optional[int] = None,
                  grid: Optional[tuple[float, float, int]] = None) -> MetricResult:
    """Gaussian Parzen-window log-likelihood of held-out real images under the samples' KDE.

    Args:
        ctx: samples (N, C, H, W) uint8 or (N, D) points; the reference DataConfig.
        n_val: validation images that choose sigma (see :func:`split_sizes`).
        n_test: test images scored; None: ``ctx.n_real`` (``--n-real``) or N_TEST.
        grid: (low, high, count) of the sigma grid; None: ``GRIDS`` for images or points.

    Returns:
        value: mean test log-likelihood (nats); details: stderr, sigma, sigma_grid, val_scores,
        n_val, n_test, n_samples, conditional.
    """
    if ctx.n_fake < 2:
        raise TooFewSamples(f"parzen needs at least 2 samples, got {ctx.n_fake}; use a larger --n")
    n_test = n_test if n_test is not None else (ctx.n_real or N_TEST)
    ref = reference_split(ctx, n_val, n_test)
    samples = as_points(ctx.samples, "samples")
    image = ctx.samples.dim() == 4
    if image != ref["image"] or samples.shape[1] != ref["test"].shape[1]:
        raise ConfigError(f"parzen: samples of shape {tuple(ctx.samples.shape[1:])} cannot be "
                          f"scored against '{ctx.reference.name}' data of shape {ref['shape']}; "
                          "pass the run's own dataset (and its image_size / channels)")
    low, high, count = grid or GRIDS["images" if image else "points"]
    # Toy points have no fixed range: their grid follows the reference's spread.
    scale = 1.0 if image else float(torch.cat([ref["val"], ref["test"]]).std(dim=0).mean())
    sigmas = sigma_grid(low, high, count) * scale
    sigma, scores = select_sigma(samples, ref["val"], sigmas)
    mean, stderr = mean_and_stderr(parzen_log_density(ref["test"], samples, sigma)[:, 0])
    details: dict[str, Any] = {
        "stderr": stderr, "sigma": sigma, "n_val": len(ref["val"]), "n_test": len(ref["test"]),
        "n_samples": ctx.n_fake, "conditional": ctx.labels is not None,
        "sigma_grid": sigmas.tolist(), "val_scores": scores.tolist()}
    if count > 1 and sigma in (float(sigmas[0]), float(sigmas[-1])):
        details["estimate"] = (f"sigma={sigma:.4g} is at the edge of the grid "
                               f"{float(sigmas[0]):.4g}..{float(sigmas[-1]):.4g}; the best "
                               "bandwidth may lie outside it (pass a wider grid)")
    suffix = ctx.reference.toy if ctx.reference.name == "toy-2d" else ctx.reference.name
    protocol = ctx.protocol("parzen", real=False, features=False, n_val=len(ref["val"]),
                            n_test=len(ref["test"]), grid=[low, high, count], grid_scale=scale,
                            sigma=sigma, pixels="[0, 1]" if image else "as given",
                            stderr="std/sqrt(n)")
    protocol["n_real"] = len(ref["test"])
    protocol["reference"]["source"] = ref["source"]
    return MetricResult(ctx.name("parzen", suffix), mean, details, protocol)
