"""Training curves grouped by what they mean, for the run report and the comparison page.

Statistics are grouped by name pattern, not by GAN variant: :data:`PLOT_GROUPS` is a table of
``fnmatch`` patterns, each statistic goes to the first group that matches it, and a name no group
matches gets a group of its own prefix ("Other: Foo"), so a loss that reports new statistics is
plotted without a change here. Patterns:

==================  =========================================  ================================
group               patterns                                   example names
==================  =========================================  ================================
D and G loss        ``Loss/D``, ``Loss/G``
D loss real/fake    ``Loss/D/real``, ``Loss/D/fake``
adversarial/class   ``Loss/*/adv``, ``Loss/*/class``           ACGAN's ``Loss/G/class``
class real/fake     ``Loss/*/class_*``                         ``Loss/D/class_real``
other loss terms    ``Loss/*``                                 ``Loss/D/gp``
class accuracy      ``Acc/*``                                  ``Acc/D/class_fake``
D(x) and D(G(z))    ``Prob/*``
critic values       ``Critic/*``                               ``Critic/W-distance``
gradient norms      ``GradNorm/*``                             WGAN-GP's ``GradNorm/D(x_hat)``
images/s            ``Speed/*``
==================  =========================================  ================================

``Metrics/*`` (in-loop evaluation) is drawn separately by :func:`plot_metrics`, one panel per
metric with its best step marked.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from ganforge.imaging import agg_figure
from ganforge.reporting.plots import _series, moving_average

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Records = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class PlotGroup:
    """Curves drawn together.

    Attributes:
        key: short identifier (HTML anchors, tests).
        title: the heading shown above the plot.
        patterns: fnmatch patterns of the statistic names it takes.
        ylim: fixed y range for bounded values (probabilities, accuracies).
    """

    key: str
    title: str
    patterns: tuple[str, ...]
    ylim: Optional[tuple[float, float]] = None


PLOT_GROUPS: tuple[PlotGroup, ...] = (
    PlotGroup("losses", "D and G loss", ("Loss/D", "Loss/G")),
    PlotGroup("loss-real-fake", "D loss on real vs fake images", ("Loss/D/real", "Loss/D/fake")),
    PlotGroup("adv-class", "Adversarial vs class loss", ("Loss/*/adv", "Loss/*/class")),
    PlotGroup("class-real-fake", "Class loss on real vs fake images", ("Loss/*/class_*",)),
    PlotGroup("loss-other", "Other loss terms", ("Loss/*",)),
    PlotGroup("accuracy", "Class accuracy", ("Acc/*",), (-0.02, 1.02)),
    PlotGroup("probabilities", "D(x) and D(G(z))", ("Prob/*",), (-0.02, 1.02)),
    PlotGroup("critic", "Critic values", ("Critic/*",)),
    PlotGroup("grad-norm", "Gradient norms", ("GradNorm/*",)),
    PlotGroup("speed", "Images per second", ("Speed/*",)),
)
# Bookkeeping values and the in-loop metrics (plotted by plot_metrics) are no curve group.
NOT_CURVES = ("step", "Progress/*", "Time/*", "Metrics/*", "Diagnostic/*")
METRIC_PREFIX = "Metrics/"


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def stat_names(records: Records) -> list[str]:
    """Every statistic name in the records, in first-seen order."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def group_stats(names: Sequence[str]) -> list[tuple[PlotGroup, list[str]]]:
    """Assign each name to the first group that matches it; unmatched names get prefix groups.

    Returns:
        ``(group, names)`` pairs in table order (prefix groups last), only non-empty groups.
    """
    table: dict[str, tuple[PlotGroup, list[str]]] = {g.key: (g, []) for g in PLOT_GROUPS}
    for name in names:
        if _matches(name, NOT_CURVES):
            continue
        group = next((g for g in PLOT_GROUPS if _matches(name, g.patterns)), None)
        if group is None:
            prefix = name.split("/")[0]
            group = PlotGroup(f"other-{prefix.lower()}", f"Other: {prefix}", (f"{prefix}/*",))
            table.setdefault(group.key, (group, []))
        table[group.key][1].append(name)
    return [(g, sorted(keys)) for g, keys in table.values() if keys]


def _smooth(values: np.ndarray) -> np.ndarray:
    # ~2% of the points per window: trends readable, spikes (divergence, collapse) still visible.
    window = max(1, len(values) // 50)
    return moving_average(values, window) if window > 1 else values


def _draw(ax: "Axes", steps: np.ndarray, values: np.ndarray, label: str, color: Any,
          style: str = "-") -> None:
    smooth = _smooth(values)
    if smooth is not values:  # the raw values faintly underneath keep spikes exact
        ax.plot(steps, values, color=color, alpha=0.2, linewidth=0.7, linestyle=style)
    marker = "." if len(values) < 3 else None  # a single point draws no line
    ax.plot(steps, smooth, color=color, linewidth=1.4, linestyle=style, label=label,
            marker=marker)


def _finish(fig: "Figure", ax: "Axes", group: PlotGroup, n_labels: int) -> "Figure":
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    if group.ylim:
        ax.set_ylim(*group.ylim)
    if n_labels:
        ax.legend(loc="best", fontsize=7, ncol=2 if n_labels > 4 else 1)
    # Fixed margins instead of tight_layout, which renders the figure once more just to
    # measure it (half of the cost of a report's curves).
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.17)
    return fig


def plot_group(records: Records, group: PlotGroup, keys: Sequence[str]) -> "Figure":
    """One run's curves of one group, one color per statistic."""
    from matplotlib import colormaps

    fig = agg_figure(7.5, 2.8)
    ax = fig.subplots()
    palette = colormaps["tab10"]
    for i, key in enumerate(keys):
        steps, values = _series(records, key)
        if len(steps):
            _draw(ax, steps, values, key, palette(i % 10))
    ax.set_title(group.title, fontsize=10)
    return _finish(fig, ax, group, len(keys))


def plot_overlay(runs: Sequence[tuple[str, Records]], group: PlotGroup, keys: Sequence[str]
                 ) -> "Figure":
    """Several runs' curves of one group: one color per run, one line style per statistic."""
    from matplotlib import colormaps

    fig = agg_figure(7.5, 3.0)
    ax = fig.subplots()
    palette, styles = colormaps["tab10"], ("-", "--", ":", "-.")
    n = 0
    for i, (label, records) in enumerate(runs):
        for j, key in enumerate(keys):
            steps, values = _series(records, key)
            if len(steps):
                _draw(ax, steps, values, f"{label}: {key}", palette(i % 10), styles[j % 4])
                n += 1
    ax.set_title(group.title, fontsize=10)
    return _finish(fig, ax, group, n)


def best_point(records: Records, key: str, higher_is_better: bool
               ) -> Optional[tuple[int, float]]:
    """(step, value) of the best finite value of ``key`` (the first one on ties), or None."""
    steps, values = _series(records, key)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    masked = np.where(finite, values, -np.inf if higher_is_better else np.inf)
    i = int(np.argmax(masked) if higher_is_better else np.argmin(masked))
    return int(steps[i]), float(values[i])


def plot_metrics(records: Records, keys: Sequence[str], higher: Sequence[bool]) -> "Figure":
    """One panel per in-loop metric, its best value marked with a star and a dashed line.

    Args:
        records: stats records holding ``Metrics/<name>`` values.
        keys: the metric statistic names.
        higher: per key, whether a larger value is better.
    """
    fig = agg_figure(7.5, 2.3 * len(keys))
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for ax, key, up in zip(axes, keys, higher):
        steps, values = _series(records, key)
        ax.plot(steps, values, color="tab:blue", marker=".", linewidth=1.2)
        best = best_point(records, key, up)
        title = key[len(METRIC_PREFIX):] + (" (higher is better)" if up else " (lower is better)")
        if best is not None:
            ax.axvline(best[0], color="tab:red", linestyle="--", linewidth=1)
            ax.plot([best[0]], [best[1]], marker="*", color="tab:red", markersize=12)
            title += f" — best {best[1]:.4g} at step {best[0]}"
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return fig
