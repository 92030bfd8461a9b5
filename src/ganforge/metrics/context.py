"""The context every metric receives: fake samples, the reference data and lazy features.

A metric is a registered function ``metric(ctx: EvalContext) -> MetricResult``. The context
holds the fake samples and hands out, lazily and at most once each, the extractor, the fake
features and the cached reference statistics, so ``--metrics fid,kid,pr`` extracts every set
once. Names say the protocol: ``<prefix><n_fake>_<extractor>``, e.g. ``fid10k_mnist-lenet``
(counts that are not whole thousands are written out: ``fid500_mnist-lenet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ganforge.errors import ConfigError
from ganforge.metrics import extractors
from ganforge.metrics.base import FeatureExtractor
from ganforge.metrics.reference import ReferenceStats, count_tag, extract, reference_stats, versions
from ganforge.metrics.reference_files import ReferenceFiles


def load_extractor(spec: str, device: str = "cpu") -> FeatureExtractor:
    """:func:`ganforge.metrics.extractors.load_extractor` (one name to replace in tests)."""
    return extractors.load_extractor(spec, device=device)


@dataclass
class EvalContext:
    """Fake samples, the reference data and lazy access to features.

    Attributes:
        samples: (N, C, H, W) uint8 images or (N, D) float vectors (toy data).
        labels: what the samples were generated for: (N,) int64 classes, (N, K) float
            condition rows (attributes or continuous values), or None.
        reference: DataConfig of the real data, images given as files
            (:class:`~.reference_files.ReferenceFiles`), or None when no metric needs it.
        extractor_spec: a FeatureExtractor, or a spec for :func:`load_extractor`.
        n_real: real samples for the reference statistics (None: as many as fakes).
    """

    samples: torch.Tensor
    labels: Optional[torch.Tensor] = None
    reference: Any = None
    extractor_spec: FeatureExtractor | str | None = None
    n_real: Optional[int] = None
    seed: int = 0
    device: str = "cpu"
    cache_dir: Optional[Path] = None
    log: Callable[[str], None] = print
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_fake(self) -> int:
        return self.samples.shape[0]

    def load(self, spec: FeatureExtractor | str) -> FeatureExtractor:
        """An extractor by spec (name or path), loaded once per context; objects pass through."""
        if not isinstance(spec, (str, Path)):
            return spec
        if f"x:{spec}" not in self._memo:
            self._memo[f"x:{spec}"] = load_extractor(str(spec), device=self.device)
        return self._memo[f"x:{spec}"]

    @property
    def extractor(self) -> FeatureExtractor:
        spec = self.extractor_spec
        if spec is None:
            if self.reference is None:
                raise ConfigError("no evaluator: pass --evaluator (e.g. mnist-lenet) or "
                                  "--dataset to use that dataset's default")
            if isinstance(self.reference, ReferenceFiles):
                raise ConfigError("--reference images have no evaluator of their own; pass "
                                  "--evaluator inception, or a domain evaluator (e.g. "
                                  "mnist-lenet, or a file made by `ganforge train-evaluator`)")
            spec = f"{self.reference.name}-lenet"  # the dataset's own domain evaluator
        return self.load(spec)

    def fake(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Fake features (N, F) float32 and logits (N, K) or None."""
        if "fake" not in self._memo:
            if self.samples.dim() != 4:
                raise ConfigError("feature metrics need images; use toy-2d for 2-D samples")
            self._memo["fake"] = extract(self.extractor, self.samples)
        return self._memo["fake"]

    def real(self) -> ReferenceStats:
        """Reference statistics of ``n_real`` (default: N) real samples, from the cache."""
        if "real" not in self._memo:
            if self.reference is None:
                raise ConfigError("this metric compares with real data: pass --dataset "
                                  "(and --data-root / --split)")
            n = self.n_real if self.n_real is not None else self.n_fake
            self._memo["real"] = reference_stats(self.extractor, self.reference, n, self.seed,
                                                 self.cache_dir, log=self.log)
        return self._memo["real"]

    def name(self, prefix: str, suffix: Optional[str] = None) -> str:
        """Protocol name: ``<prefix><count>_<suffix or extractor>``."""
        return f"{prefix}{count_tag(self.n_fake)}_{suffix or self.extractor.name}"

    def protocol(self, metric: str, real: bool = True,
                 extractor: Optional[FeatureExtractor] = None, features: bool = True,
                 **params: Any) -> dict[str, Any]:
        """How a number was measured (stored next to it).

        Args:
            metric: the registry name.
            real: the number used the cached reference statistics (their count is recorded).
            extractor: the extractor used, when not the context's own.
            features: the number rests on an extractor (its provenance is recorded); False for
                metrics on the samples themselves (e.g. ``parzen``).
            **params: the metric's settings.
        """
        out: dict[str, Any] = {"metric": metric, "n_fake": self.n_fake, "n_real": None,
                               "seed": self.seed}
        if extractor is not None or (features and self.samples.dim() == 4):
            out.update((extractor or self.extractor).provenance())
        if self.reference is not None:
            ref = self.reference
            # The settings that change the real images (not the folder they were read from).
            keys = ("image_size", "channels", "limit") + (("toy",) if ref.name == "toy-2d" else ())
            out["reference"] = {"dataset": ref.name, "split": ref.split, **{
                k: getattr(ref, k) for k in keys if getattr(ref, k, None) is not None}}
            if isinstance(ref, ReferenceFiles):  # which files, by path and content
                out["reference"].update(ref.describe())
        if real:
            out["n_real"] = self.real().n
            out["reference"]["source"] = self.real().meta.get("source")
        return dict(out, params=params, versions=versions())


def need_labels(ctx: EvalContext, metric: str) -> torch.Tensor:
    """The samples' (N,) class labels; a one-line error without them."""
    if ctx.labels is None:
        raise ConfigError(f"{metric} needs class-conditional samples: a conditional run, or an "
                          "npz with 'labels'")
    if ctx.labels.dim() != 1:
        raise ConfigError(f"{metric} needs class labels, but the samples were generated for "
                          f"{ctx.labels.shape[1]}-column condition rows; use condition-fit")
    return ctx.labels


def rank_note(n: int, dims: int) -> Optional[str]:
    """The flag for a covariance estimated from no more samples than dimensions."""
    if n <= dims:
        return (f"{n} samples <= {dims} feature dims: the covariance is rank-deficient and the "
                "FID is a biased estimate, not comparable with larger-n numbers")
    return None
