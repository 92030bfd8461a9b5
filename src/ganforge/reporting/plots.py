"""Training curves from stats records, drawn off screen.

Every figure is a bare Agg figure from :func:`ganforge.imaging.agg_figure` (no pyplot, no
window, no global backend switch), so plotting is safe in a training process with no display.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from ganforge.fileio import atomic_path
from ganforge.imaging import agg_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["moving_average", "plot_losses"]


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that ignores non-finite entries.

    Args:
        values: (T,) float array; NaN/inf entries are left out of every window.
        window: number of points per window (1 returns the finite values unchanged).

    Returns:
        (T,) float array; NaN where a window holds no finite value.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    # Cumulative sums give every window's sum and finite count in O(T).
    csum = np.concatenate([[0.0], np.cumsum(clean)])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(len(values))
    lo = np.maximum(idx + 1 - max(1, window), 0)
    sums = csum[idx + 1] - csum[lo]
    counts = ccount[idx + 1] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` over the records that have it; None/inf become NaN."""
    steps, values = [], []
    for i, record in enumerate(records):
        if key not in record:
            continue
        step = record.get("step", i)
        value = record[key]
        try:
            value = float(value) if value is not None else math.nan
        except (TypeError, ValueError):
            continue  # a non-numeric entry is not a curve point
        steps.append(float(step) if step is not None else float(i))
        values.append(value if math.isfinite(value) else math.nan)
    return np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)


def _keys_with_prefix(records: Sequence[Mapping[str, Any]], prefix: str) -> list[str]:
    return sorted({k for record in records for k in record if k.startswith(prefix)})


def _role_colormap(key: str) -> str:
    """Colormap of a curve: D in blues, G (and D's view of fakes) in oranges, others greens."""
    if "G(" in key:  # Prob/D(G(z)) is about generated samples
        return "Oranges"
    role = key.split("/")[1] if key.count("/") >= 1 else ""
    if role == "G":
        return "Oranges"
    if role.startswith("D"):
        return "Blues"
    return "Greens"


def _colors(keys: Sequence[str]) -> dict[str, Any]:
    """One color per key, shades of its role's colormap, so roles read at a glance."""
    from matplotlib import colormaps

    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(_role_colormap(key), []).append(key)
    colors: dict[str, Any] = {}
    for cmap_name, members in groups.items():
        cmap = colormaps[cmap_name]
        for j, key in enumerate(members):
            # Dark to medium shades; the light end of these maps is invisible on white.
            shade = 0.9 - 0.5 * j / (len(members) - 1) if len(members) > 1 else 0.8
            colors[key] = cmap(shade)
    return colors


def _draw_panel(ax: "Axes", records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    colors = _colors(keys)
    for key in keys:
        steps, values = _series(records, key)
        if len(steps) == 0:
            continue
        # A window of ~2% of the points: smooth enough to read trends, short enough that spikes
        # (mode collapse, divergence) still show, and the faint raw curve keeps them exact.
        window = max(1, len(values) // 50)
        color = colors[key]
        if window > 1:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(steps, moving_average(values, window), color=color, linewidth=1.5, label=key)
        else:
            marker = "." if len(values) < 3 else None  # a single point draws no line
            ax.plot(steps, values, color=color, linewidth=1.5, label=key, marker=marker)
    ax.grid(True, alpha=0.3)
    if keys:
        ax.legend(loc="best", fontsize=8)


def plot_losses(
    records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: Optional[str] = None
) -> Path:
    """Plot loss and probability curves from stats records to a PNG, atomically.

    Args:
        records: flushed records, e.g. from :func:`ganforge.reporting.writers.read_jsonl`:
            dicts with ``"step"`` and names like ``"Loss/D/real"``, ``"Loss/G"``, ``"Prob/D(x)"``.
            Records may lack any key; missing, None and non-finite values leave gaps.
        path: destination ``.png``.
        title: optional figure title.

    Returns:
        ``path`` as a Path.

    The upper panel holds every ``Loss/...`` curve, the lower (if any ``Prob/...`` key exists)
    every ``Prob/...`` curve on a fixed 0..1 range. Long runs get a light moving average with
    the raw values as a faint line underneath.
    """
    loss_keys = _keys_with_prefix(records, "Loss/")
    prob_keys = _keys_with_prefix(records, "Prob/")
    panels = [("Loss", loss_keys)] + ([("Probability", prob_keys)] if prob_keys else [])
    fig = agg_figure(10.0, 3.6 * len(panels) + (0.4 if title else 0.0))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, keys) in zip(axes, panels):
        _draw_panel(ax, records, keys)
        ax.set_ylabel(label)
        if not keys:
            ax.text(0.5, 0.5, "no loss values recorded", ha="center", va="center",
                    transform=ax.transAxes, color="0.5")
    if prob_keys:
        axes[-1].set_ylim(-0.02, 1.02)
    axes[-1].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
