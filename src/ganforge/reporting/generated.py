"""Report sections drawn from a generator (confusion matrix, interpolation, attribute flips)
and the animation.

A :class:`SampleSource` is the generator the report samples from: the trainer's live G while
a run trains (no checkpoint is read), or the newest checkpoint when ``ganforge report`` rebuilds
a report from the folder. Every latent here comes from a private seeded ``torch.Generator``,
so building a report never touches the global random state of a training run.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch

from ganforge.errors import CheckpointError, GanforgeError
from ganforge.imaging import agg_figure, label_grid, make_grid, to_uint8
from ganforge.metrics.extractors import load_extractor
from ganforge.metrics.formulas import evaluator_agreement, label_accuracy
from ganforge.reporting.page import data_uri, figure_uri
from ganforge.run.checkpoint import list_checkpoints
from ganforge.run.loaded import load_run
from ganforge.run.sampling import render_samples

if TYPE_CHECKING:
    from ganforge.metrics.base import FeatureExtractor
    from ganforge.run.folder import RunFolder
    from ganforge.run.sampling import NoiseSampler

# Datasets whose images are another dataset's, so that dataset's evaluator applies: the
# embedded digits are 5,000 genuine 28x28 MNIST digits.
EVALUATOR_ALIASES = {"digits": "mnist"}
CONFUSION_PER_CLASS = 50    # samples per class for the confusion matrix
INTERPOLATION_STEPS = 10    # images per interpolation row
MAX_CLASS_ROWS = 20         # conditional strips show at most this many classes
ANIMATION_FRAMES = 60       # the page's animation keeps at most this many snapshots ...
ANIMATION_WIDTH = 720       # ... and scales wider grids down to this many pixels
ANIMATION_QUALITY = 85      # lossy WebP quality of the animation frames
LEAD_MS = 500               # how long the leading copy of the last snapshot shows on each loop
# Attributes whose flip grids the report draws when the data names them (CelebA's); data with
# other 0/1 attributes gets its first FLIP_COUNT columns.
FLIP_ATTRIBUTES = ("Smiling", "Eyeglasses", "Male", "Blond_Hair", "Young", "Wearing_Hat")
FLIP_COUNT = 4


@dataclass
class SampleSource:
    """The generator a report samples from.

    Attributes:
        generator: G (any mode; samples are drawn in eval mode and the mode is restored).
        noise: the run's latent sampler (z size and distribution).
        n_classes: classes G is conditioned on; 0 for unconditional or attribute models.
        class_names: names of the classes, or None.
        step: the training step of these weights.
        origin: where the weights come from, shown in the report.
        needs_attributes: G is conditioned on (N, K) attribute vectors.
        attributes: (R, K) attribute rows from the data for such a G (a checkpoint alone has
            none: the rows come from the dataset, which only the trainer holds).
    """

    generator: torch.nn.Module
    noise: "NoiseSampler"
    n_classes: int
    class_names: Optional[list[str]]
    step: int
    origin: str
    needs_attributes: bool = False
    attributes: Optional[torch.Tensor] = None

    def sample(self, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        """G(z, y) in eval mode: (N, *shape) float on the CPU."""
        device = next(self.generator.parameters()).device
        return render_samples(self.generator, z.to(device), None if y is None else y.to(device))


def source_from_checkpoint(run: "RunFolder") -> tuple[Optional[SampleSource], Optional[str]]:
    """The newest valid checkpoint as a source, or (None, why not)."""
    if not list_checkpoints(run.path):
        return None, "no checkpoint yet; these sections appear once one is written"
    try:
        loaded = load_run(run.path)
    except CheckpointError as err:
        return None, f"no usable checkpoint ({err})"
    multi_label = bool(loaded.record.get("multi_label"))
    return SampleSource(loaded.generator, loaded.noise, 0 if multi_label else loaded.n_classes,
                        loaded.class_names, loaded.step, f"checkpoint {loaded.checkpoint.name}",
                        needs_attributes=multi_label), None


# --------------------------------------------------------------------------------------------
# Confusion matrix of conditional samples
# --------------------------------------------------------------------------------------------

def evaluator_candidates(config: dict[str, Any]) -> list[str]:
    """Evaluator specs to try for a run: ``eval.extractor``, ``<dataset>-lenet``, an alias."""
    dataset = config.get("data", {}).get("name", "")
    names = []
    spec = (config.get("eval") or {}).get("extractor")
    if spec and spec != "inception":
        names.append(str(spec))
    names.append(f"{dataset}-lenet")
    if dataset in EVALUATOR_ALIASES:
        names.append(f"{EVALUATOR_ALIASES[dataset]}-lenet")
    return names


def find_evaluator(config: dict[str, Any], cache: Optional[dict[str, Any]] = None
                   ) -> tuple[Optional["FeatureExtractor"], str]:
    """The first loadable evaluator for the run, or (None, a note saying how to create one)."""
    cache = {} if cache is None else cache
    for spec in evaluator_candidates(config):
        if spec not in cache:
            try:
                cache[spec] = load_extractor(spec)
            except GanforgeError as err:
                cache[spec] = err  # absent or unreadable: the next candidate, or the note below
        if not isinstance(cache[spec], GanforgeError):
            return cache[spec], spec
    dataset = config.get("data", {}).get("name", "NAME")
    # A file that exists but cannot be read (corrupt, wrong kind) is worth naming.
    broken = [str(cache[s]) for s in evaluator_candidates(config)
              if isinstance(cache[s], CheckpointError)]
    return None, (f"no evaluator for dataset '{dataset}' (looked for "
                  f"{', '.join(evaluator_candidates(config))}); create one with "
                  f"`ganforge train-evaluator --dataset {dataset}` and run `ganforge report RUN`"
                  + "".join(f"; {message}" for message in broken))


@dataclass
class ConfusionView:
    image: str                  # data URI of the heatmap
    overall: float              # share of samples classified as their label
    per_class: list[tuple[str, float, int]]  # (class name, accuracy, predicted most often)
    evaluator: str
    n: int
    # The evaluator's own uncertainty: its twin (trained on another split and seed) reads the
    # same samples; None for an evaluator without a twin.
    twin_overall: Optional[float] = None
    disagreement: Optional[float] = None  # share of samples the two evaluators read differently
    # Which evaluator: recipe version, whether it is current, SHA-256 prefix, held-out accuracy.
    evaluator_info: Optional[dict[str, Any]] = None


def evaluator_info(extractor: "FeatureExtractor") -> dict[str, Any]:
    """Name, recipe, checksum prefix and held-out accuracy of an evaluator (for the pages)."""
    p = extractor.provenance()
    return {"name": extractor.name, "recipe": p.get("extractor_recipe"),
            "current": p.get("extractor_recipe_current", True), "twin": p.get("extractor_twin"),
            "sha": str(p.get("extractor_sha256", ""))[:8],
            "clean": p.get("extractor_heldout_accuracy"),
            "corrupted": p.get("extractor_corrupted_accuracy")}


@torch.no_grad()
def confusion_view(source: SampleSource, extractor: "FeatureExtractor",
                   per_class: int = CONFUSION_PER_CLASS, seed: int = 0) -> ConfusionView:
    """Classify ``per_class`` samples of every class with the evaluator, as ``label-acc`` does."""
    k = source.n_classes
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(k).repeat_interleave(per_class)
    z = source.noise.z(len(y), gen, device="cpu")
    samples = to_uint8(source.sample(z, y))  # quantised like saved samples, as evaluate does
    _, logits = extractor.features_and_logits(samples)
    acc = label_accuracy(logits, y, k)
    names = source.class_names or [str(c) for c in range(k)]
    confusion = acc.confusion.numpy()
    rows = [(names[c], float(acc.per_class[c]), names[int(confusion[c].argmax())])
            for c in range(k)]
    twin = extractor.twin_logits(samples)
    agree = evaluator_agreement(logits, twin, y) if twin is not None else None
    return ConfusionView(_heatmap(confusion, names, acc.overall), acc.overall, rows,
                         extractor.name, len(y),
                         twin_overall=None if agree is None else agree.twin_accuracy,
                         disagreement=None if agree is None else agree.disagreement,
                         evaluator_info=evaluator_info(extractor))


def _heatmap(confusion: np.ndarray, names: Sequence[str], overall: float) -> str:
    k = len(names)
    size = min(7.0, 2.5 + 0.35 * k)
    fig = agg_figure(size + 1.0, size)
    ax = fig.subplots()
    share = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    ticks = range(k)
    ax.set_xticks(list(ticks), [str(n) for n in names], fontsize=7, rotation=90 if k > 12 else 0)
    ax.set_yticks(list(ticks), [str(n) for n in names], fontsize=7)
    ax.set_xlabel("class the evaluator predicts")
    ax.set_ylabel("class G was asked for")
    if k <= 12:  # counts in the cells stay readable up to about a dozen classes
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    color = "white" if share[i, j] > 0.6 else "black"
                    ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center",
                            fontsize=7, color=color)
    ax.set_title(f"label accuracy {overall:.1%}", fontsize=10)
    fig.tight_layout()
    return figure_uri(fig)


# --------------------------------------------------------------------------------------------
# Latent interpolation
# --------------------------------------------------------------------------------------------

def _slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (T, D) between (D,) latents: Gaussian latents keep their norm."""
    cos = torch.clamp((z0 / z0.norm()) @ (z1 / z1.norm()), -1.0, 1.0)
    omega = torch.acos(cos)
    if float(omega) < 1e-4:  # nearly parallel: a straight line is the same thing
        return z0 + t[:, None] * (z1 - z0)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * z0 + torch.sin(t * omega)[:, None] * z1) / so


@torch.no_grad()
def interpolation_strip(source: SampleSource, steps: int = INTERPOLATION_STEPS, rows: int = 4,
                        seed: int = 0) -> np.ndarray:
    """Samples along a path between two latents: one row per class (conditional models, every
    row the same path) or ``rows`` paths between random pairs (unconditional; an
    attribute-conditioned G gets one of ``source.attributes`` per row).

    Returns:
        (H, W, 3) uint8 grid, ``steps`` images per row.
    """
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.0, 1.0, steps)
    path = _slerp if source.noise.dist == "normal" else (
        lambda a, b, tt: a + tt[:, None] * (b - a))  # uniform latents: stay inside the cube
    if source.n_classes:
        classes = min(source.n_classes, MAX_CLASS_ROWS)
        z0, z1 = source.noise.z(2, gen, device="cpu")
        z = path(z0, z1, t).repeat(classes, 1)
        y = torch.arange(classes).repeat_interleave(steps)
        return label_grid(source.sample(z, y), y, source.class_names, steps)
    y = None
    if source.needs_attributes:
        if source.attributes is None:
            raise ValueError("an attribute-conditioned G needs attribute rows")
        rows = len(source.attributes)
        y = source.attributes.repeat_interleave(steps, dim=0)
    ends = source.noise.z(2 * rows, gen, device="cpu")
    z = torch.cat([path(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)])
    return make_grid(source.sample(z, y), steps)


# --------------------------------------------------------------------------------------------
# Attribute flips
# --------------------------------------------------------------------------------------------

def flip_attributes(names: Optional[Sequence[str]], k: int,
                    wanted: Sequence[str] = FLIP_ATTRIBUTES, count: int = FLIP_COUNT
                    ) -> list[tuple[int, str]]:
    """(column, name) of the attributes to flip: the ``wanted`` ones the data names, or, when it
    names none of them (other attribute data), its first ``count`` columns."""
    names = list(names) if names and len(names) == k else [f"attribute {j}" for j in range(k)]
    picked = [(names.index(n), n) for n in wanted if n in names]
    return picked if picked else [(j, names[j]) for j in range(min(count, k))]


@torch.no_grad()
def attribute_flips(source: SampleSource, attributes: Optional[Sequence[str]] = None,
                    seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """One grid per attribute: that attribute off and on, everything else fixed.

    Row r uses the r-th of ``source.attributes`` (rows of the data) and its own latent z_r;
    the left column asks for the row with the attribute set to 0, the right one with it set to
    1, so the two images differ only in what G does with that attribute.

    Args:
        source: an attribute-conditioned G with its (R, K) 0/1 attribute rows.
        attributes: names to flip (default: :func:`flip_attributes` of the source's names).

    Returns:
        [(attribute name, (H, W, 3) uint8 grid of R rows x 2 columns)].

    Raises:
        ValueError: the source has no attribute rows, or they are not 0/1.
    """
    rows = source.attributes
    if not source.needs_attributes or rows is None:
        raise ValueError("attribute flips need an attribute-conditioned G and its attribute rows")
    rows = rows.float().cpu()
    if not bool(((rows == 0) | (rows == 1)).all()):
        raise ValueError("attribute flips need 0/1 attribute rows, not continuous conditions")
    k = rows.shape[1]
    if attributes is None:
        chosen = flip_attributes(source.class_names, k)
    else:
        names = list(source.class_names or [])
        chosen = [(names.index(a), a) for a in attributes if a in names]
    z = source.noise.z(len(rows), torch.Generator().manual_seed(seed), device="cpu")
    grids = []
    for column, name in chosen:
        off, on = rows.clone(), rows.clone()
        off[:, column], on[:, column] = 0.0, 1.0
        y = torch.stack([off, on], dim=1).flatten(0, 1)  # off, on, off, on, ... per row
        grids.append((name, make_grid(source.sample(z.repeat_interleave(2, dim=0), y), 2)))
    return grids


# --------------------------------------------------------------------------------------------
# The fixed-noise grids as one animation
# --------------------------------------------------------------------------------------------

def animation_uri(snapshots: Sequence[tuple[int, Path]], max_frames: int = ANIMATION_FRAMES,
                  max_width: int = ANIMATION_WIDTH) -> tuple[str, list[int]]:
    """An animated WebP of evenly spaced snapshots (first and last always kept), as a data URI.

    A copy of the last snapshot leads the animation: a still of it (a print, a screenshot, a
    reader with animation off) shows its first frame, which then is where training got to, not
    step 0's noise. It plays from the first snapshot on after that and lingers on the last, so
    each loop stands still on the final state.

    Returns:
        The URI and the steps of the snapshots it plays (the leading copy not counted).
    """
    from PIL import Image

    if not snapshots:
        raise ValueError("no snapshots to animate")
    picks = sorted({int(round(i)) for i in np.linspace(0, len(snapshots) - 1,
                                                        min(max_frames, len(snapshots)))})
    frames = []
    for i in picks:
        with Image.open(snapshots[i][1]) as img:
            frame = img.convert("RGB")
        if frame.width > max_width:
            height = max(1, math.floor(frame.height * max_width / frame.width))
            frame = frame.resize((max_width, height), Image.LANCZOS)
        frames.append(frame)
    size = frames[-1].size
    # Grids of one run share a size; this only guards against a folder edited by hand.
    frames = [f if f.size == size else f.resize(size) for f in frames]
    durations = [250] * (len(frames) - 1) + [1500]  # linger on the final state
    if len(frames) > 1:
        frames, durations = [frames[-1], *frames], [LEAD_MS, *durations]
    buffer = io.BytesIO()
    # Lossy WebP: early, noisy grids cost ~4x less than as GIF, which matters once 60 frames
    # are inlined into one page; every browser of the last years shows animated WebP.
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0, quality=ANIMATION_QUALITY)
    return data_uri(buffer.getvalue(), "image/webp"), [snapshots[i][0] for i in picks]
