"""Training diagnostics: named checks that say, once and in plain words, what is going wrong.

Every check is registered in :data:`CHECKS` and sees two streams:

* each flushed stats record (``{"Loss/D": ..., "Prob/D(x)": ...}``), via :meth:`on_record`;
* each fixed-noise snapshot (the samples behind the progress grids), via :meth:`on_samples`.

They are a stats writer (attached to the run's collector by the trainer's watch) and a reader
of the findings they wrote (for ``report.html`` and ``compare.html``), which is why they live
with the reporting room. A check returns a message when its condition holds; :class:`Diagnostics`
then reports it once per run: one console line through the trainer's ``log``, one line in ``diagnostics.jsonl`` in
the run folder (``{"step", "name", "title", "message", "advice"}``) and a section of
``report.html``. Nothing is added to ``stats.jsonl``: a finding is text with advice, not a curve.

Thresholds live in ``[diagnostics]`` of the config (:class:`ganforge.config.DiagnosticsConfig`).
Stats conditions must hold on every stats line for ``window_steps`` steps (and at least
:data:`MIN_RECORDS` lines), so one noisy line never fires. Sample checks ignore snapshots before
``window_steps`` (an untrained G is neither collapsed nor converged) and need ``patience``
snapshots in a row. The checks only read names, so new loss variants that report the same
statistics (``Prob/...``, ``Loss/D/class_real``, ...) are covered without new code.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch

from ganforge.config import DiagnosticsConfig
from ganforge.registry import Registry
from ganforge.fileio import read_jsonl
from ganforge.reporting.writers import JsonlWriter
from ganforge.run.layout import DIAGNOSTICS_FILE as FILENAME
MIN_RECORDS = 3          # stats lines a sustained condition needs, however long the window
MAX_DIVERSITY_SAMPLES = 256  # per group: bounds the pairwise-distance cost of a snapshot


@dataclass
class Finding:
    """One diagnostic that fired.

    Attributes:
        name: the check's registry name, e.g. "d-wins".
        step: the training step at which it fired.
        title: a short headline.
        message: what was observed, with the numbers.
        advice: what to try.
    """

    name: str
    step: int
    title: str
    message: str
    advice: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_diversity(samples: torch.Tensor, labels: Optional[torch.Tensor] = None) -> float:
    """Mean pairwise L2 distance between samples; within each class when class labels are given.

    A conditional G that ignores z draws the same picture for every z of a class while the
    classes still differ, so diversity is measured inside each class and then averaged.

    Args:
        samples: (N, ...) float samples (images in [-1, 1] or points).
        labels: (N,) int class of each sample, or None / (N, K) attributes (one group).

    Returns:
        The mean distance, or NaN when no group holds two samples.
    """
    flat = samples.detach().reshape(samples.shape[0], -1).float().cpu()
    if labels is not None and labels.dim() == 1:
        labels = labels.cpu()
        groups = [flat[labels == c] for c in torch.unique(labels)]
    else:
        groups = [flat]
    means = []
    for group in groups:
        group = group[:MAX_DIVERSITY_SAMPLES]
        n = group.shape[0]
        if n >= 2:
            # The diagonal is zero: the sum over all pairs / n(n-1) is the off-diagonal mean.
            means.append(float(torch.cdist(group, group).sum()) / (n * (n - 1)))
    return sum(means) / len(means) if means else math.nan


class Sustained:
    """Whether a condition has held on every stats line for ``window_steps`` steps.

    Args:
        window_steps: steps from the first line of the streak to the current one.
        min_records: lines the streak needs as well.
    """

    def __init__(self, window_steps: int, min_records: int = MIN_RECORDS) -> None:
        self.window, self.min_records = window_steps, min_records
        self.start: Optional[int] = None
        self.count = 0

    def update(self, step: int, holds: bool) -> bool:
        if not holds:
            self.start, self.count = None, 0
            return False
        if self.start is None:
            self.start = step
        self.count += 1
        return self.count >= self.min_records and step - self.start >= self.window


def _finite(record: Mapping[str, Any], key: str) -> Optional[float]:
    value = record.get(key)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------

class Check:
    """One condition. Subclasses set ``title`` and ``advice`` and override the hooks they need.

    Args:
        cfg: the thresholds.
        reference_diversity: :func:`sample_diversity` of real data laid out like the fixed
            noise (same classes), or None when unknown.
    """

    title = ""
    advice = ""

    def __init__(self, cfg: DiagnosticsConfig, reference_diversity: Optional[float]) -> None:
        self.cfg, self.reference = cfg, reference_diversity

    def on_record(self, step: int, record: Mapping[str, Any]) -> Optional[str]:
        """A message when the condition holds after this stats line, else None."""
        return None

    def on_samples(self, step: int, samples: torch.Tensor, labels: Optional[torch.Tensor]
                   ) -> Optional[str]:
        """A message when the condition holds after this snapshot ((N, ...) samples), else None."""
        return None


CHECKS: Registry[type[Check]] = Registry("diagnostic")


@CHECKS.register("non-finite")
class NonFinite(Check):
    """A loss or D output became NaN or infinite."""

    title = "Non-finite loss"
    advice = ("Training has diverged and will not recover. Lower the learning rates "
              "(optim.lr_d, optim.lr_g), check that the data is scaled to [-1, 1], and resume "
              "from a checkpoint written before this step (`ganforge train --resume RUN`).")
    PATTERNS = ("Loss/*", "Prob/*", "Critic/*")

    def on_record(self, step: int, record: Mapping[str, Any]) -> Optional[str]:
        for key, value in record.items():
            if any(fnmatch.fnmatchcase(key, p) for p in self.PATTERNS):
                if value is None or not math.isfinite(float(value)):
                    return f"{key} is {value} at step {step}."
        return None


class SustainedCheck(Check):
    """A check on a condition that must hold for ``window_steps`` before it fires."""

    def __init__(self, cfg: DiagnosticsConfig, reference_diversity: Optional[float]) -> None:
        super().__init__(cfg, reference_diversity)
        self.streak = Sustained(cfg.window_steps)


@CHECKS.register("d-wins")
class DiscriminatorWins(SustainedCheck):
    """D(x) near 1 and D(G(z)) near 0 for a long time: G learns nothing from D."""

    title = "The discriminator wins outright"
    advice = ("D tells real from fake so easily that G gets almost no useful gradient. Lower "
              "optim.lr_d or raise optim.lr_g, smooth D's targets (loss.real_label=0.9 or "
              "loss.real_label_range=[0.7,1.2]), add dropout to D (model.d_dropout=0.3), use a "
              "smaller D, or switch to a loss with useful gradients far from the boundary "
              "(loss.name=wgan-gp or hinge with model.spectral_norm=true).")

    def on_record(self, step: int, record: Mapping[str, Any]) -> Optional[str]:
        real, fake = _finite(record, "Prob/D(x)"), _finite(record, "Prob/D(G(z))")
        if real is None or fake is None:
            return None
        holds = real >= self.cfg.d_wins_real and fake <= self.cfg.d_wins_fake
        if self.streak.update(step, holds):
            return (f"D(x) >= {self.cfg.d_wins_real} and D(G(z)) <= {self.cfg.d_wins_fake} since "
                    f"step {self.streak.start} (now D(x)={real:.3f}, D(G(z))={fake:.3f}).")
        return None


@CHECKS.register("class-imbalance")
class ClassImbalance(SustainedCheck):
    """ACGAN: D's class loss on real images far above that on fakes (seed 000's failure)."""

    title = "D classifies fakes, not real images"
    advice = ("D's class head learns the labels from G's samples (an easy task G cooperates "
              "with) instead of from real data, so label-conditioned samples need not look like "
              "their class. Train the class head on real images only (loss.class_on_fake=false), "
              "pre-train it on real labels (loss.pretrain_steps=1000), lower "
              "loss.class_weight, and check the real labels are right.")

    def on_record(self, step: int, record: Mapping[str, Any]) -> Optional[str]:
        real, fake = _finite(record, "Loss/D/class_real"), _finite(record, "Loss/D/class_fake")
        if real is None or fake is None:
            return None
        holds = real > self.cfg.class_ratio * fake and real - fake > self.cfg.class_gap
        if self.streak.update(step, holds):
            return (f"class loss on real images {real:.3f} vs {fake:.3f} on fakes, more than "
                    f"{self.cfg.class_ratio:g}x since step {self.streak.start}.")
        return None


@CHECKS.register("mode-collapse")
class ModeCollapse(Check):
    """Fixed-noise samples lose their diversity, or the predicted-class entropy falls."""

    title = "Mode collapse"
    advice = ("G maps many latents to the same few outputs. Lower optim.lr_g or raise lr_d a "
              "little, use a loss that penalises collapse less kindly (loss.name=wgan-gp), add "
              "a minibatch-std layer to D (model.d_mbstd=4) or noisy labels "
              "(loss.real_label_range=[0.7,1.2]), and keep the best checkpoint with "
              "eval.every/eval.best to sample from before it.")
    ENTROPY_PATTERN = "Metrics/*entropy*"  # e.g. Metrics/class-entropy (eval.metrics)

    def __init__(self, cfg: DiagnosticsConfig, reference_diversity: Optional[float]) -> None:
        super().__init__(cfg, reference_diversity)
        self.low_snapshots = 0
        self.peak_diversity = 0.0
        self.peak_entropy: dict[str, float] = {}
        self.low_entropy: dict[str, int] = {}

    def on_samples(self, step: int, samples: torch.Tensor, labels: Optional[torch.Tensor]
                   ) -> Optional[str]:
        if step < self.cfg.window_steps:
            return None
        diversity = sample_diversity(samples, labels)
        if not math.isfinite(diversity):
            return None
        self.peak_diversity = max(self.peak_diversity, diversity)
        # Collapse is diversity *falling*: below a share of its own best since warm-up. It must
        # also be low against real data, because early noisy samples are far apart and
        # become closer as G learns clean images; blurry early samples that were never diverse
        # are not a fall.
        ratio = self.cfg.collapse_ratio
        low = diversity < ratio * self.peak_diversity and (
            self.reference is None or diversity < ratio * self.reference)
        self.low_snapshots = self.low_snapshots + 1 if low else 0
        if self.low_snapshots >= self.cfg.patience:
            real = f", real data {self.reference:.3g}" if self.reference else ""
            return (f"fixed-noise sample diversity fell to {diversity:.3g}, below {ratio:g}x its "
                    f"best {self.peak_diversity:.3g}{real}, for {self.low_snapshots} snapshots.")
        return None

    def on_record(self, step: int, record: Mapping[str, Any]) -> Optional[str]:
        for key, value in record.items():
            if not fnmatch.fnmatchcase(key, self.ENTROPY_PATTERN):
                continue
            value = _finite(record, key)
            if value is None:
                continue
            peak = self.peak_entropy[key] = max(self.peak_entropy.get(key, value), value)
            low = value < self.cfg.entropy_ratio * peak
            self.low_entropy[key] = self.low_entropy.get(key, 0) + 1 if low else 0
            if self.low_entropy[key] >= self.cfg.patience:
                return (f"{key} fell to {value:.3f}, below {self.cfg.entropy_ratio:g}x its peak "
                        f"{peak:.3f}, for {self.low_entropy[key]} evaluations.")
        return None


@CHECKS.register("g-frozen")
class GeneratorFrozen(Check):
    """The fixed-noise samples stop changing between snapshots."""

    title = "The generator stopped changing"
    advice = ("G's updates no longer move its output: its learning rate is (or decayed to) "
              "almost zero, or its gradients vanish (a saturating loss with a winning D). Check "
              "optim.lr_g, optim.lr_decay and optim.lr_min, and prefer the non-saturating "
              "loss.name=bce over minimax.")

    def __init__(self, cfg: DiagnosticsConfig, reference_diversity: Optional[float]) -> None:
        super().__init__(cfg, reference_diversity)
        self.previous: Optional[torch.Tensor] = None
        self.still = 0

    def on_samples(self, step: int, samples: torch.Tensor, labels: Optional[torch.Tensor]
                   ) -> Optional[str]:
        current = samples.detach().float().cpu()
        previous, self.previous = self.previous, current
        if previous is None or previous.shape != current.shape:
            return None
        change = float((current - previous).abs().mean())
        self.still = self.still + 1 if change < self.cfg.frozen_change else 0
        if self.still >= self.cfg.patience:
            return (f"mean |change| of the fixed-noise samples is {change:.2e} (< "
                    f"{self.cfg.frozen_change:g}) over the last {self.still} snapshots.")
        return None


# --------------------------------------------------------------------------------------------
# Running the checks
# --------------------------------------------------------------------------------------------

class Diagnostics:
    """Runs every registered check; each fires at most once per run.

    It is a stats writer (``write_scalars``), so attaching it to the run's
    :class:`~ganforge.reporting.StatsCollector` runs the record checks on every flush.

    Args:
        cfg: thresholds.
        log: one-line console messages.
        path: ``diagnostics.jsonl`` to append findings to, or None (keep them in memory).
        reference_diversity: see :class:`Check`.
        fired: findings already reported (a resumed run does not repeat them).
    """

    def __init__(self, cfg: DiagnosticsConfig, log: Callable[[str], None] = print,
                 path: Optional[Path] = None, reference_diversity: Optional[float] = None,
                 fired: tuple[Finding, ...] = ()) -> None:
        self.cfg, self.log = cfg, log
        self.checks = {name: CHECKS.get(name)(cfg, reference_diversity) for name in CHECKS}
        self.findings: list[Finding] = list(fired)
        self._writer = JsonlWriter(path) if path is not None else None

    @property
    def fired(self) -> set[str]:
        return {f.name for f in self.findings}

    def write_scalars(self, step: int, record: Mapping[str, Any]) -> None:
        """Run the record checks on one flushed stats line."""
        for name, check in self.checks.items():
            if name not in self.fired:
                self._report(name, step, check.on_record(step, record))

    def observe_samples(self, step: int, samples: torch.Tensor,
                        labels: Optional[torch.Tensor] = None) -> None:
        """Run the sample checks on one fixed-noise snapshot ((N, ...) samples, (N,) labels)."""
        for name, check in self.checks.items():
            if name not in self.fired:
                self._report(name, step, check.on_samples(step, samples, labels))

    def _report(self, name: str, step: int, message: Optional[str]) -> None:
        if message is None:
            return
        check = self.checks[name]
        finding = Finding(name, int(step), check.title, message, check.advice)
        self.findings.append(finding)
        self.log(f"diagnostic [{name}] at step {step}: {check.title}: {message} "
                 f"Advice: {check.advice}")
        if self._writer is not None:
            self._writer.write_scalars(finding.step, {k: v for k, v in finding.to_dict().items()
                                                      if k != "step"})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_findings(run_dir: Path) -> Optional[list[Finding]]:
    """The findings in ``run_dir/diagnostics.jsonl``, or None when the run has no such file."""
    path = Path(run_dir) / FILENAME
    if not path.is_file():
        return None
    fields = Finding.__dataclass_fields__
    return [Finding(**{k: r[k] for k in fields}) for r in read_jsonl(path)]


def replay(records: list[Mapping[str, Any]], cfg: DiagnosticsConfig) -> list[Finding]:
    """The record checks run over a finished run's stats lines (runs from before diagnostics)."""
    diagnostics = Diagnostics(cfg, log=lambda message: None)
    for index, record in enumerate(records):
        diagnostics.write_scalars(int(record.get("step", index)), record)
    return diagnostics.findings
