"""Scoring for the quality benchmark (``quality.py``): the unseen-digits reference, the real-data
floor and one scored checkpoint, all through ``ganforge.metrics.evaluate.evaluate``.

Every number here comes from the same call: samples (a run folder's checkpoint, or an npz of
real digits) against one reference npz, with one evaluator object loaded once per benchmark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ganforge import fileio
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.metrics.base import FeatureExtractor, MetricResult
from ganforge.metrics.evaluate import evaluate
from ganforge.metrics.extractors import load_extractor

REFERENCE_FILE = "digits-5000.npz"   # the 5,000 embedded digits, both splits
FLOOR_FILE = "mnist-test-{n}.npz"    # the first n MNIST test digits, scored like samples
SAMPLE_SEED = 0                      # latents/labels seed: every model draws the same inputs


def _quiet(_: str) -> None:
    pass


def _write_npz(path: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    """``images`` (N, 1, 28, 28) uint8 and ``labels`` (N,) as an npz (written once, atomically:
    its bytes key the cached reference statistics)."""
    if not path.is_file():
        with fileio.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, images=images[:, 0].numpy(), labels=labels.numpy())
    return path


def pixels_sha256(images: torch.Tensor) -> str:
    """SHA-256 of the pixels: names an image set independently of its file's zip metadata."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def unseen_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded ``digits`` dataset's train (4,000) and test (1,000) splits, concatenated:
    5,000 genuine MNIST digits (500 per class) that are not in the MNIST test split the models
    train on (checked pixel for pixel when the benchmark starts)."""
    parts = [build_dataset(DataConfig(name="digits", split=s)) for s in ("train", "test")]
    return torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts])


def mnist_test(root: Path, n: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` (all when None) MNIST test digits (N, 1, 28, 28) uint8 and labels."""
    data = build_dataset(DataConfig(name="mnist", root=str(root), split="test", download=False))
    return data.x[:n], data.y[:n]


def check_unseen(reference: torch.Tensor, train: torch.Tensor) -> int:
    """How many reference digits also occur (pixel for pixel) in the training digits."""
    seen = {hashlib.sha1(x.numpy().tobytes()).digest() for x in train}
    return sum(hashlib.sha1(x.numpy().tobytes()).digest() in seen for x in reference)


def flatten(results: list[MetricResult], metrics: list[str]) -> dict[str, Any]:
    """The benchmark's fields from ``evaluate``'s results (in the order of ``metrics``)."""
    out: dict[str, Any] = {}
    for name, r in zip(metrics, results):
        d = r.details
        if name == "fid":
            out["fid"] = r.value
        elif name == "pr":
            out.update(precision=d["precision"], recall=d["recall"])
        elif name == "label-acc":
            out.update(acc=r.value, worst=d["worst_class_acc"], twin_acc=d["twin_acc"],
                       disagreement=d["disagreement"], per_class=d["per_class"])
        elif name == "class-entropy":
            out.update(entropy=r.value, min_share=d["min_class_share"],
                       histogram=d["histogram"])
    return out


@dataclass
class Scorer:
    """Scores samples against the unseen digits with one evaluator.

    Attributes:
        extractor: the evaluator (``mnist-lenet``), loaded once.
        reference: the reference npz (:data:`REFERENCE_FILE`).
        n_samples: samples per score (10,000).
        n_reference: reference images (all 5,000; a seeded subset when fewer).
    """

    extractor: FeatureExtractor
    reference: Path
    n_samples: int
    n_reference: int
    info: dict[str, Any] = field(default_factory=dict)

    def score(self, source: Path, conditional: bool, checkpoint: Optional[str | Path] = None,
              both: bool = False) -> dict[str, Any]:
        """FID, precision/recall (k = 3) and label accuracy (conditional) or digit entropy.

        Args:
            source: a run folder (samples from ``checkpoint``; labels cycle over the digits) or
                an npz of images (and labels).
            both: label accuracy and digit entropy (the real-data row).
        """
        metrics = ["fid", "pr"] + (["label-acc", "class-entropy"] if both else
                                   ["label-acc"] if conditional else ["class-entropy"])
        results = evaluate(source, metrics, self.extractor, str(self.reference),
                           self.n_samples, self.n_reference, seed=SAMPLE_SEED, log=_quiet,
                           checkpoint=checkpoint)
        return flatten(results, metrics)


def make_scorer(evaluator: str | FeatureExtractor, folder: Path, n_samples: int,
                n_reference: Optional[int] = None) -> Scorer:
    """The scorer of a benchmark: writes the reference npz into ``folder`` once.

    Args:
        n_reference: score against a seeded subset of this many reference digits (quick
            checks); None: all 5,000.
    """
    extractor = load_extractor(evaluator) if isinstance(evaluator, str) else evaluator
    x, y = unseen_digits()
    path = _write_npz(Path(folder) / REFERENCE_FILE, x, y)
    n_ref = len(x) if n_reference is None else min(n_reference, len(x))
    info = {"evaluator": extractor.name, "evaluator_sha256": extractor.checksum,
            "evaluator_recipe": getattr(extractor, "recipe_version", None),
            "reference": "digits (embedded MNIST sample), train + test splits",
            "reference_n": n_ref, "reference_pixels_sha256": pixels_sha256(x),
            "n_samples": n_samples, "sample_seed": SAMPLE_SEED}
    return Scorer(extractor, path, n_samples, n_ref, info)


def real_floor(scorer: Scorer, root: Path, folder: Path) -> dict[str, Any]:
    """The real-data row: the first ``n_samples`` MNIST test digits (the training digits), with
    their labels, scored exactly as samples are; its FID is the floor the targets scale."""
    x, y = mnist_test(root)
    overlap = check_unseen(unseen_digits()[0], x)  # against every digit the models train on
    x, y = x[:scorer.n_samples], y[:scorer.n_samples]
    path = _write_npz(Path(folder) / FLOOR_FILE.format(n=len(x)), x, y)
    row = scorer.score(path, conditional=True, both=True)
    row.update(n=len(x), pixels_sha256=pixels_sha256(x), reference_overlap=overlap)
    return row
