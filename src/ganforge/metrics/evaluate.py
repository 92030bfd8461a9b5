"""Scoring samples: the metric context, the feature-based metrics and ``ganforge evaluate``.

A metric is a registered function ``metric(ctx: EvalContext) -> MetricResult``. The context
holds the fake samples and hands out, lazily and at most once each, the extractor, the fake
features and the cached reference statistics, so ``--metrics fid,kid,pr`` extracts every set
once. Names say the protocol: ``<prefix><n_fake>_<extractor>``, e.g. ``fid10k_mnist-lenet``
(counts that are not whole thousands are written out: ``fid500_mnist-lenet``).

Too few samples: FID and per-class FID with no more samples than feature dimensions use a
rank-deficient covariance and are flagged ``details["estimate"]``; KID shrinks its subset size
and IS its split count to what the samples allow (flagged the same way); precision/recall and
density/coverage need more samples than k and fail with a one-line error otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ganforge.data.base import one_line
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics import formulas as F
from ganforge.metrics.base import METRICS, FeatureExtractor, MetricResult
from ganforge.metrics.reference import (ReferenceStats, count_tag, extract, reference_stats,
                                        versions)

GENERATE_CHUNK = 1000  # samples per G call when scoring a run: bounds memory at 64 px RGB


def load_extractor(spec: str, device: str = "cpu") -> FeatureExtractor:
    """``ganforge.metrics.extractors.load_extractor``, imported when first needed."""
    from ganforge.metrics.extractors import load_extractor as load

    return load(spec, device=device)


# --------------------------------------------------------------------------------------------
# The context every metric receives
# --------------------------------------------------------------------------------------------

@dataclass
class EvalContext:
    """Fake samples, the reference data and lazy access to features.

    Attributes:
        samples: (N, C, H, W) uint8 images or (N, D) float vectors (toy data).
        labels: (N,) int64 classes the samples were generated for, or None.
        reference: DataConfig of the real data, or None when no metric needs it.
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
                 extractor: Optional[FeatureExtractor] = None, **params: Any) -> dict[str, Any]:
        """How a number was measured (stored next to it)."""
        out: dict[str, Any] = {"metric": metric, "n_fake": self.n_fake, "n_real": None,
                               "seed": self.seed}
        if extractor is not None or self.samples.dim() == 4:
            out.update((extractor or self.extractor).provenance())
        if self.reference is not None:
            ref = self.reference
            # The settings that change the real images (not the folder they were read from).
            keys = ("image_size", "channels", "limit") + (("toy",) if ref.name == "toy-2d" else ())
            out["reference"] = {"dataset": ref.name, "split": ref.split, **{
                k: getattr(ref, k) for k in keys if getattr(ref, k, None) is not None}}
        if real:
            out["n_real"] = self.real().n
            out["reference"]["source"] = self.real().meta.get("source")
        return dict(out, params=params, versions=versions())


def _need_labels(ctx: EvalContext, metric: str) -> torch.Tensor:
    if ctx.labels is None:
        raise ConfigError(f"{metric} needs class-conditional samples: a conditional run, or an "
                          "npz with 'labels'")
    return ctx.labels


def _rank_note(n: int, dims: int) -> Optional[str]:
    """The flag for a covariance estimated from no more samples than dimensions."""
    if n <= dims:
        return (f"{n} samples <= {dims} feature dims: the covariance is rank-deficient and the "
                "FID is a biased estimate, not comparable with larger-n numbers")
    return None


# --------------------------------------------------------------------------------------------
# Feature metrics
# --------------------------------------------------------------------------------------------

@METRICS.register("fid")
def fid_metric(ctx: EvalContext) -> MetricResult:
    """Fréchet distance of fake and real features (FID), e.g. fid10k_mnist-lenet."""
    f_fake, _ = ctx.fake()
    real = ctx.real()
    value = F.frechet_distance(real.mu, real.sigma, *F.feature_stats(f_fake))
    note = _rank_note(min(real.n, ctx.n_fake), f_fake.shape[1])
    details = {"n_real": real.n, "n_fake": ctx.n_fake, **({"estimate": note} if note else {})}
    return MetricResult(ctx.name("fid"), value, details, ctx.protocol("fid"))


@METRICS.register("kid")
def kid_metric(ctx: EvalContext, subsets: int = 100, subset_size: int = 1000) -> MetricResult:
    """Kernel Inception Distance (unbiased MMD², cubic kernel) over subsets; std in details."""
    f_fake, _ = ctx.fake()
    real = ctx.real()
    size = min(subset_size, real.n, ctx.n_fake)
    mean, std = F.kid(real.features, f_fake, subsets, size, seed=ctx.seed)
    details: dict[str, Any] = {"std": std, "subsets": subsets, "subset_size": size}
    if size < subset_size:
        details["estimate"] = f"subset size reduced from {subset_size} to {size} (few samples)"
    return MetricResult(ctx.name("kid"), mean, details,
                        ctx.protocol("kid", subsets=subsets, subset_size=size, degree=3, coef=1))


@METRICS.register("is")
def is_metric(ctx: EvalContext, splits: int = 10) -> MetricResult:
    """Inception Score of the extractor's class predictions (any classifier extractor)."""
    _, logits = ctx.fake()
    if logits is None:
        raise ConfigError(f"is needs a classifier; extractor '{ctx.extractor.name}' has no "
                          "class logits")
    used = min(splits, ctx.n_fake)
    mean, std = F.inception_score(logits, used)
    details: dict[str, Any] = {"std": std, "splits": used}
    if used < splits:
        details["estimate"] = f"{used} splits instead of {splits} (few samples)"
    return MetricResult(ctx.name("is"), mean, details, ctx.protocol("is", real=False,
                                                                     splits=used))


@METRICS.register("pr")
def pr_metric(ctx: EvalContext, k: int = 3) -> MetricResult:
    """Improved precision (the value) and recall (Kynkäänniemi et al. 2019), k-NN manifolds."""
    f_fake, _ = ctx.fake()
    precision, recall = F.precision_recall(ctx.real().features, f_fake, k)
    return MetricResult(ctx.name("pr"), precision, {"precision": precision, "recall": recall,
                                                     "k": k}, ctx.protocol("pr", k=k))


@METRICS.register("dc")
def dc_metric(ctx: EvalContext, k: int = 5) -> MetricResult:
    """Density (the value) and coverage (Naeem et al. 2020) on the real k-NN balls."""
    f_fake, _ = ctx.fake()
    density, coverage = F.density_coverage(ctx.real().features, f_fake, k)
    return MetricResult(ctx.name("dc"), density, {"density": density, "coverage": coverage,
                                                   "k": k}, ctx.protocol("dc", k=k))


@METRICS.register("label-acc")
def label_acc_metric(ctx: EvalContext) -> MetricResult:
    """Share of conditional samples classified as their label; per class and confusion too."""
    labels = _need_labels(ctx, "label-acc")
    _, logits = ctx.fake()
    k = ctx.extractor.n_classes
    if logits is None or labels.min() < 0 or labels.max() >= k:
        raise ConfigError(f"label-acc needs an evaluator over the samples' classes; '"
                          f"{ctx.extractor.name}' has {k}, labels span {int(labels.min())}.."
                          f"{int(labels.max())}")
    acc = F.label_accuracy(logits, labels, k)
    details = {"worst_class_acc": float(np.nanmin(acc.per_class.numpy())),
               "per_class": acc.per_class.tolist(), "confusion": acc.confusion.tolist(),
               "class_names": ctx.extractor.class_names}
    return MetricResult(ctx.name("acc"), acc.overall, details, ctx.protocol("label-acc",
                                                                            real=False))


@METRICS.register("fid-per-class")
def fid_per_class_metric(ctx: EvalContext) -> MetricResult:
    """FID of each class's samples against that class's real images; the value is their mean."""
    labels = _need_labels(ctx, "fid-per-class")
    f_fake, _ = ctx.fake()
    real = ctx.real()
    if real.labels is None:
        raise ConfigError(f"fid-per-class needs a labelled reference; '{ctx.reference.name}' "
                          "has no class labels")
    per_class, notes = [], []
    for c in range(int(max(labels.max(), real.labels.max())) + 1):
        fake_c, real_c = f_fake[labels == c], real.features[real.labels == c]
        if min(len(fake_c), len(real_c)) < 2:
            per_class.append(None)  # a class G was not asked for, or absent from the reference
            continue
        per_class.append(F.frechet_distance(*F.feature_stats(real_c), *F.feature_stats(fake_c)))
        note = _rank_note(min(len(fake_c), len(real_c)), f_fake.shape[1])
        if note:
            notes.append(f"class {c}: {note}")
    scored = [v for v in per_class if v is not None]
    if not scored:
        raise F.TooFewSamples("fid-per-class: no class has 2 fake and 2 real samples")
    details: dict[str, Any] = {"per_class": per_class}
    if notes:
        details["estimate"] = f"{notes[0]} ({len(notes)} classes flagged)"
    return MetricResult(ctx.name("fidpc"), sum(scored) / len(scored), details,
                        ctx.protocol("fid-per-class"))


# --------------------------------------------------------------------------------------------
# Samples and the evaluate entry point
# --------------------------------------------------------------------------------------------

def load_npz(path: Path, n: Optional[int] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Samples saved by ``ganforge generate --format npz`` (the first ``n`` when given).

    The file holds ``images`` uint8 (N, H, W) or (N, C, H, W), or ``points`` float (N, D) for
    toy data, and optionally ``labels`` int (N,). Returns samples (N, C, H, W) uint8 or
    (N, D) float32, and labels (N,) int64 or None.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:  # object arrays would unpickle
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise GanforgeError(f"cannot read samples '{path}' ({one_line(err)}); pass an npz made by "
                            "`ganforge generate --format npz`") from None
    if "images" in arrays:
        x = arrays["images"]
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise GanforgeError(f"'{path}': images must be uint8 (N, H, W) or (N, C, H, W), "
                                f"got {x.dtype} {x.shape}")
        samples = torch.from_numpy(x[:, None] if x.ndim == 3 else x)
    elif "points" in arrays:
        samples = torch.from_numpy(arrays["points"].astype(np.float32))
    else:
        raise GanforgeError(f"'{path}' has neither 'images' nor 'points'")
    labels = arrays.get("labels")
    y = None if labels is None else torch.from_numpy(labels.astype(np.int64)).flatten()
    if y is not None and len(y) != len(samples):
        raise GanforgeError(f"'{path}': {len(y)} labels for {len(samples)} samples")
    if n is not None:
        samples, y = samples[:n], (None if y is None else y[:n])
    return samples, y


def sample_run(run: Any, n: int, seed: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``n`` samples of a loaded run, labels cycling over its classes (uniform) when conditional.

    Images are quantised to uint8 like saved samples, so a run and its npz score the same.
    Chunk i is drawn with seed ``seed * 1_000_003 + i``.
    """
    from ganforge.reporting import to_uint8

    y = torch.arange(n) % run.n_classes if run.n_classes else None
    parts = []
    for i, start in enumerate(range(0, n, GENERATE_CHUNK)):
        count = min(GENERATE_CHUNK, n - start)
        part = run.generate(n=None if y is not None else count,
                            labels=None if y is None else y[start:start + count],
                            seed=seed * 1_000_003 + i)
        parts.append(to_uint8(part) if part.dim() == 4 else part.float())
    return torch.cat(parts), y


def run_reference(run_dir: Path, split: str = "test", root: Optional[str] = None) -> Any:
    """The run's own data settings (dataset, size, channels, toy set) on the reference split."""
    from dataclasses import replace

    from ganforge.api import load_config

    data = load_config(run_dir).data
    return replace(data, split=split, limit=None, root=root or data.root)


def evaluate(source: str | Path, metrics: list[str],
             extractor: FeatureExtractor | str | None = None, reference: Any = None,
             n_fake: Optional[int] = 10_000, n_real: Optional[int] = None, seed: int = 0,
             device: str = "cpu", cache_dir: Optional[Path] = None,
             log: Callable[[str], None] = print) -> list[MetricResult]:
    """Score a run folder or an npz of samples.

    Args:
        source: a run folder (samples drawn with its G) or an npz (see :func:`load_npz`).
        metrics: registry names, e.g. ["fid", "label-acc"] (unknown names fail at once).
        extractor: a FeatureExtractor or a spec ("mnist-lenet", "inception", a path); None
            means ``<reference dataset>-lenet``.
        reference: DataConfig (or dict of its fields) of the real data; None for a run uses
            its own dataset's test split.
        n_fake: samples drawn from a run (the first n of an npz; None: all of the npz).
        n_real: real samples for the statistics (None: as many as fakes).

    Returns:
        One MetricResult per metric, in the order asked.
    """
    import ganforge.metrics  # noqa: F401  (registers every metric, coverage ones included)
    from ganforge.config import DataConfig

    fns = [METRICS.get(name) for name in metrics]
    path = Path(source)
    reference = DataConfig(**reference) if isinstance(reference, dict) else reference
    if path.is_dir():
        from ganforge.api import load_run

        run = load_run(path, device=device)
        reference = reference if reference is not None else run_reference(path)
        samples, labels = sample_run(run, n_fake or 10_000, seed)
    elif path.is_file():
        samples, labels = load_npz(path, n_fake)
    else:
        raise GanforgeError(f"'{source}' is neither a run folder nor an npz file")
    ctx = EvalContext(samples, labels, reference, extractor, n_real, seed, device, cache_dir, log)
    return [fn(ctx) for fn in fns]


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------

def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge evaluate`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "evaluate", help="score a run or an npz of samples (FID, KID, IS, ...)",
        description="Score samples. Example: ganforge evaluate RUN --metrics fid,label-acc; "
        "ganforge evaluate samples.npz --metrics fid --dataset mnist --data-root ../data")
    p.add_argument("source", metavar="RUN_OR_NPZ", help="a run folder or an npz of samples")
    p.add_argument("--metrics", "-m", default="fid",
                   help=f"comma-separated metric names ({', '.join(METRICS.names())})")
    p.add_argument("--evaluator", help="feature extractor: mnist-lenet, inception or a path "
                   "(default: <dataset>-lenet)")
    p.add_argument("--dataset", help="reference dataset (default for runs: the run's own)")
    p.add_argument("--data-root", help="folder with the reference dataset's files")
    p.add_argument("--split", default="test", help="reference split (default: test)")
    p.add_argument("--toy", help="toy-2d reference set (implies --dataset toy-2d): 8gaussians "
                   "or 25gaussians")
    p.add_argument("--n", type=int, default=None, help="fake samples (default: 10000 for runs, "
                   "all of an npz)")
    p.add_argument("--n-real", type=int, help="real samples (default: as many as fakes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", "-o", help="JSON file (default: RUN/metrics.json or NPZ-metrics.json)")


def _jsonable(value: Any) -> Any:
    """Tensors to lists and NaN/inf to None, so the JSON file is strict JSON."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_table(results: list[MetricResult]) -> str:
    """Name, value and the scalar details of each result, one line each."""
    width = max([len(r.name) for r in results] + [6])
    lines = [f"{'metric':{width}s}  {'value':>12s}  details"]
    for r in results:
        extras = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in r.details.items() if isinstance(v, (int, float)) and k != "estimate"]
        if "estimate" in r.details:
            extras.append("(estimate)")
        lines.append(f"{r.name:{width}s}  {r.value:12.5g}  {' '.join(extras)}")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``ganforge evaluate``: print the table, write (merge into) the JSON file."""
    from ganforge import fileio
    from ganforge.training.setup import pick_device

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not names:
        raise ConfigError("--metrics is empty; e.g. --metrics fid,kid")
    for flag in ("n", "n_real"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise ConfigError(f"--{flag.replace('_', '-')} must be positive")
    source, reference = Path(args.source), None
    if args.dataset or args.toy:
        reference = {"name": args.dataset or "toy-2d", "root": args.data_root,
                     "split": args.split, **({"toy": args.toy} if args.toy else {})}
    elif source.is_dir():
        reference = run_reference(source, args.split, args.data_root)
    n = args.n if args.n is not None or not source.is_file() else None
    results = evaluate(source, names, args.evaluator, reference, n, args.n_real, args.seed,
                       str(pick_device(args.device)))
    print(format_table(results))
    out = Path(args.out) if args.out else (source / "metrics.json" if source.is_dir()
                                           else source.with_name(f"{source.stem}-metrics.json"))
    merged: dict[str, Any] = {}
    if out.is_file():  # keep earlier metrics of the same run; a recomputed name is replaced
        try:
            merged = {r["name"]: r for r in json.loads(out.read_text()).get("results", [])}
        except (ValueError, AttributeError, KeyError, TypeError):
            merged = {}
    merged.update({r.name: _jsonable(asdict(r)) for r in results})
    fileio.write_json(out, {"source": str(source), "results": list(merged.values())})
    print(f"wrote {out}")
    return 0
