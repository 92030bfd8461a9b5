"""Reference statistics of real data: features, logits, mean/covariance and labels, cached.

Extracting features of 10k-50k real images is the slow part of every metric, and it is the
same for every run scored against the same data, so it is done once per
(extractor checksum, dataset + its settings, split, n, seed) and stored under
``<ganforge home>/refstats`` (``$GANFORGE_HOME/refstats``, default the platform's cache folder,
e.g. ``~/.cache/ganforge/refstats``; listed and cleared by ``ganforge cache``) as two files:

* ``<name>.safetensors``: features (N, F) float32, mu (F,) and sigma (F, F) float64, and when
  present logits (N, K) float32 and labels (N,) int64;
* ``<name>.json``: the key it was computed for, the data source, the counts and the SHA-256
  of the safetensors file. It is written last, so it marks a complete entry.

Both files are written atomically. On load the key and the checksum are verified; an entry that
fails is recomputed (see :func:`reference_stats`). The module also holds the small provenance
helpers every metric shares (library versions, count tags) and the real-vs-real FID floor.
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ganforge import fileio
from ganforge.fileio import sha256_file
from ganforge.data.usercache import REFSTATS_DIR
from ganforge.errors import DataError
from ganforge.metrics.base import FeatureExtractor
from ganforge.metrics.formulas import TooFewSamples, feature_stats, frechet_distance
from ganforge.metrics.reference_files import ReferenceFiles, load_reference
from ganforge.runtime import HOME_ENV, ganforge_home  # noqa: F401  (HOME_ENV: re-exported)

CACHE_VERSION = 1           # bump when the stored layout changes, to invalidate old entries
EXTRACT_BATCH = 500         # images per extractor call: bounds memory, keeps BLAS busy

# Data settings that never change which images a dataset yields: the same split read from
# another folder, or downloaded or not, is the same data. Every other setting of the data
# section (the common ones and the dataset's own, e.g. data.toy) is part of a cache key.
NOT_IN_KEY = ("root", "download")
DATA_KEY_FIELDS = ("name", "split", "channels", "image_size", "limit")  # files given as data


# --------------------------------------------------------------------------------------------
# Provenance helpers
# --------------------------------------------------------------------------------------------

def versions() -> dict[str, Optional[str]]:
    """Versions of the libraries a number depends on (None when one is not installed)."""
    out: dict[str, Optional[str]] = {}
    for name in ("ganforge", "torch", "torchvision", "torchmetrics", "numpy", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def count_tag(n: int) -> str:
    """Sample count as it appears in metric names: 10000 -> "10k", 1500 -> "1500"."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def cache_root() -> Path:
    """``<ganforge home>/refstats``: ``$GANFORGE_HOME/refstats`` when set, else below the
    platform's cache folder (:func:`ganforge.runtime.ganforge_home`; not created)."""
    return ganforge_home() / REFSTATS_DIR


# --------------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------------

def to_float_images(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) uint8 in 0..255 -> float32 in [-1, 1]; float input is returned as float32."""
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


@torch.no_grad()
def extract(extractor: FeatureExtractor, images: torch.Tensor, batch_size: int = EXTRACT_BATCH
            ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run ``extractor`` over images in batches.

    Args:
        images: (N, C, H, W) uint8 (0..255) or float in [-1, 1], on the CPU. Converting per
            batch keeps only one float batch in memory.

    Returns:
        features (N, F) float32 and logits (N, K) float32 or None, on the CPU.
    """
    feats, logits = [], []
    for i in range(0, images.shape[0], batch_size):
        f, lg = extractor.features_and_logits(to_float_images(images[i:i + batch_size]))
        feats.append(f.detach().float().cpu())
        if lg is not None:
            logits.append(lg.detach().float().cpu())
    if not feats:
        raise TooFewSamples("no images to extract features from")
    return torch.cat(feats), (torch.cat(logits) if logits else None)


# --------------------------------------------------------------------------------------------
# The statistics and their cache
# --------------------------------------------------------------------------------------------

@dataclass
class ReferenceStats:
    """Statistics of N real samples under one extractor.

    Attributes:
        features: (N, F) float32, in a seeded random order (any prefix is a random subset).
        mu: (F,) float64 mean; sigma: (F, F) float64 unbiased covariance.
        logits: (N, K) float32 when the extractor is a classifier, else None.
        labels: (N,) int64 class labels when the dataset has them, else None.
        meta: the cache key plus source, counts and extractor provenance (JSON-able).
    """

    features: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    logits: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.features.shape[0]


def stats_key(extractor: FeatureExtractor, data_cfg: Any, n: Optional[int], seed: int
              ) -> dict[str, Any]:
    """The JSON-able key of a cache entry (what must match for an entry to be reused)."""
    if dataclasses.is_dataclass(data_cfg) and not isinstance(data_cfg, ReferenceFiles):
        data = {f.name: getattr(data_cfg, f.name) for f in dataclasses.fields(data_cfg)
                if f.name not in NOT_IN_KEY}
    else:
        data = {k: getattr(data_cfg, k, None) for k in DATA_KEY_FIELDS}
    if isinstance(data_cfg, ReferenceFiles):  # files given as the real set: their content
        data["content"] = data_cfg.content
    return {"version": CACHE_VERSION, "extractor": extractor.name,
            "extractor_sha256": extractor.checksum, "resize": extractor.resize_method,
            "data": data, "n": n, "seed": seed}


def cache_paths(key: dict[str, Any], cache_dir: Optional[Path] = None) -> tuple[Path, Path]:
    """(json, safetensors) paths of the entry for ``key``; readable name + key hash."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    d = key["data"]
    stem = (f"{d['name']}-{d['split']}-{key['extractor']}-n{key['n'] or 'all'}"
            f"-s{key['seed']}-{digest}")
    folder = Path(cache_dir) if cache_dir is not None else cache_root()
    return folder / f"{stem}.json", folder / f"{stem}.safetensors"



def save_stats(stats: ReferenceStats, json_path: Path, tensor_path: Path) -> None:
    """Write an entry atomically: tensors first, then the JSON that names their checksum."""
    from safetensors.torch import save_file

    tensors = {"features": stats.features.contiguous(), "mu": stats.mu.contiguous(),
               "sigma": stats.sigma.contiguous()}
    for name in ("logits", "labels"):
        value = getattr(stats, name)
        if value is not None:
            tensors[name] = value.contiguous()
    with fileio.atomic_path(tensor_path) as tmp:
        save_file(tensors, str(tmp))
    meta = dict(stats.meta, tensors=tensor_path.name, sha256=sha256_file(tensor_path))
    fileio.write_json(json_path, meta)


def load_stats(json_path: Path, expected_key: Optional[dict[str, Any]] = None) -> ReferenceStats:
    """Read and verify a cache entry.

    Raises:
        DataError: the entry is unreadable, its tensors do not match the recorded SHA-256, its
            key differs from ``expected_key``, or its tensors have inconsistent shapes.
    """
    from safetensors.torch import load_file

    json_path = Path(json_path)
    try:
        meta = json.loads(json_path.read_text())
        # Only a file name is honoured: a crafted entry cannot point outside the cache folder.
        tensor_path = json_path.parent / Path(meta["tensors"]).name
        if sha256_file(tensor_path) != meta["sha256"]:
            raise DataError(f"reference statistics '{tensor_path.name}' do not match their "
                            "recorded SHA-256 (modified or truncated)")
        tensors = load_file(str(tensor_path))
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise DataError(f"cannot read reference statistics '{json_path}' ({err})") from None
    if expected_key is not None and meta.get("key") != json.loads(json.dumps(expected_key)):
        raise DataError(f"reference statistics '{json_path.name}' were computed for another "
                        "extractor or dataset")
    stats = ReferenceStats(meta=meta, **tensors)
    n, f = stats.features.shape
    if stats.mu.shape != (f,) or stats.sigma.shape != (f, f) or n != meta.get("n_samples") \
            or any(t is not None and t.shape[0] != n for t in (stats.logits, stats.labels)):
        raise DataError(f"reference statistics '{json_path.name}' have inconsistent shapes")
    return stats


def compute_stats(extractor: FeatureExtractor, data_cfg: Any, n: Optional[int] = None,
                  seed: int = 0) -> ReferenceStats:
    """Build the dataset, draw a seeded random subset of ``n`` samples and extract it.

    Args:
        data_cfg: a :class:`~ganforge.config.DataConfig` (name, root, split, ...), or images
            given as files (:class:`~.reference_files.ReferenceFiles`).
        n: samples to use; None, or more than the split holds, means all of them (the count
            actually used is ``meta["n_samples"]``).
    """
    data = load_reference(data_cfg)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    order = order[:n] if n is not None else order
    features, logits = extract(extractor, data.x[order])
    mu, sigma = feature_stats(features)
    labels = None
    if data.y is not None and data.y.dim() == 1:  # class indices, not attribute vectors
        labels = data.y[order].to(torch.int64)
    meta = {"key": stats_key(extractor, data_cfg, n, seed), "source": data.source,
            "n_samples": len(order), "n_available": len(data), "n_classes": data.n_classes,
            "versions": versions(), **extractor.provenance()}
    return ReferenceStats(features, mu, sigma, logits, labels, meta)


def reference_stats(extractor: FeatureExtractor, data_cfg: Any, n: Optional[int] = None,
                    seed: int = 0, cache_dir: Optional[Path] = None, refresh: bool = False,
                    log: Callable[[str], None] = print) -> ReferenceStats:
    """Reference statistics from the cache, computed and stored on a miss.

    An entry that fails verification is reported through ``log`` and recomputed, so a
    corrupted cache costs time, never a wrong number. See :func:`compute_stats` for arguments.
    """
    key = stats_key(extractor, data_cfg, n, seed)
    json_path, tensor_path = cache_paths(key, cache_dir)
    if json_path.is_file() and not refresh:
        try:
            return load_stats(json_path, key)
        except DataError as err:
            log(f"note: {err}; recomputing")
    stats = compute_stats(extractor, data_cfg, n, seed)
    try:
        save_stats(stats, json_path, tensor_path)
    except Exception as err:  # noqa: BLE001 - a read-only cache must not lose the result
        log(f"note: could not cache reference statistics in '{json_path.parent}' ({err})")
    return stats


# --------------------------------------------------------------------------------------------
# Real-vs-real floor
# --------------------------------------------------------------------------------------------

def fid_floor(features: torch.Tensor, counts: tuple[int, ...]) -> dict[int, float]:
    """FID between two disjoint sets of real features of each size in ``counts``.

    No generator can be expected to score below this at the same sample count: it is the
    estimator's own bias plus the spread between two draws of the real data.

    Args:
        features: (N, F) real features in random order (as :class:`ReferenceStats` holds them);
            samples [0, c) are compared with [c, 2c).
        counts: sample counts c, each with 2c <= N.
    """
    out = {}
    for c in counts:
        if 2 * c > features.shape[0]:
            raise TooFewSamples(f"a real-vs-real FID at {c} samples needs {2 * c} real samples, "
                                f"only {features.shape[0]} available")
        out[c] = frechet_distance(*feature_stats(features[:c]), *feature_stats(features[c:2 * c]))
    return out


def real_floor(extractor: FeatureExtractor, data_cfg: Any, counts: tuple[int, ...] = (1000, 5000),
               seed: int = 0, cache_dir: Optional[Path] = None,
               log: Callable[[str], None] = print) -> dict[int, float]:
    """Real-vs-real FID floor of a dataset split at the ``counts`` that fit in it.

    Counts c with 2c larger than the split are left out (reported through ``log``); if none fit,
    :class:`TooFewSamples` is raised.

    Returns:
        {count: FID} for the counts that fit.
    """
    stats = reference_stats(extractor, data_cfg, None, seed, cache_dir, log=log)
    fit = tuple(c for c in counts if 2 * c <= stats.n)
    if not fit:
        raise TooFewSamples(f"the {data_cfg.name} {data_cfg.split} split has {stats.n} samples; "
                            f"a real-vs-real FID needs twice the count (asked: {counts})")
    if len(fit) < len(counts):
        log(f"note: real-vs-real floor skips counts above {stats.n // 2} (split too small)")
    return fid_floor(stats.features, fit)
