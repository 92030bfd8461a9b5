"""Toy-2D samples as pictures: (N, 2) points drawn as a scatter plot frame."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ganforge.imaging.pictures import agg_figure, figure_to_array


def _limits(
    lim: float | Sequence[float] | None, points: np.ndarray, reference: Optional[np.ndarray]
) -> tuple[float, float, float, float]:
    """Axis limits (xmin, xmax, ymin, ymax) from ``lim`` or, failing that, from the data."""
    if lim is not None:
        values = [float(v) for v in np.atleast_1d(np.asarray(lim, dtype=np.float64))]
        if len(values) == 1:
            return -abs(values[0]), abs(values[0]), -abs(values[0]), abs(values[0])
        if len(values) == 2:
            return values[0], values[1], values[0], values[1]
        if len(values) == 4:
            return values[0], values[1], values[2], values[3]
        raise ValueError(f"lim must be a number, (lo, hi) or (xmin, xmax, ymin, ymax), got {lim}")
    # The reference set is fixed over a run, so limits taken from it keep animation frames
    # aligned; limits from the samples alone would jump from frame to frame.
    data = reference if reference is not None and len(reference) else points
    finite = data[np.isfinite(data).all(axis=1)] if len(data) else data
    if len(finite) == 0:
        return -1.0, 1.0, -1.0, 1.0
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    margin = 0.1 * np.maximum(hi - lo, 1e-6)
    return lo[0] - margin[0], hi[0] + margin[0], lo[1] - margin[1], hi[1] + margin[1]


def _as_points(points: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().float().cpu().numpy()
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must have shape (N, 2), got {arr.shape}; draw other vectors "
                         "with to_plane(points)")
    return arr


def to_plane(points: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, D) vectors as (N, 2) points to scatter: the first two features (D = 1: on a line)."""
    arr = np.asarray(points.detach().float().cpu() if isinstance(points, torch.Tensor)
                     else points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"vectors must have shape (N, D), got {arr.shape}")
    if arr.shape[1] == 1:
        return np.concatenate([arr, np.zeros_like(arr)], axis=1)
    return arr[:, :2]


def scatter_image(
    points: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray | None = None,
    size_px: int = 400,
    lim: float | Sequence[float] | None = None,
    title: Optional[str] = None,
) -> np.ndarray:
    """Render toy-2D samples as a scatter plot, off screen.

    Args:
        points: (N, 2) generated samples, drawn in blue.
        reference: optional (M, 2) real samples, drawn underneath in gray.
        size_px: width and height of the result in pixels.
        lim: axis limits: a number L for [-L, L] on both axes, (lo, hi) for both, or
            (xmin, xmax, ymin, ymax). None derives them from ``reference`` (or ``points``);
            pass them explicitly when frames without a reference must line up.
        title: optional text above the plot, e.g. ``"step 2000"``.

    Returns:
        (size_px, size_px, 3) uint8 array.
    """
    pts = _as_points(points, "points")
    ref = _as_points(reference, "reference") if reference is not None else None
    xmin, xmax, ymin, ymax = _limits(lim, pts, ref)
    dpi = 100
    fig = agg_figure(size_px / dpi, size_px / dpi, dpi=dpi)
    # Fixed axes rectangle (no tight_layout), so every frame has identical geometry.
    ax = fig.add_axes((0.1, 0.08, 0.86, 0.82 if title else 0.88))
    marker = max(1.0, 4.0 * size_px / 400)
    if ref is not None:
        ax.scatter(ref[:, 0], ref[:, 1], s=marker, c="0.7", alpha=0.5, linewidths=0, label="real")
    ax.scatter(pts[:, 0], pts[:, 1], s=marker, c="tab:blue", alpha=0.6, linewidths=0, label="G(z)")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("auto")
    ax.tick_params(labelsize=max(5, int(8 * size_px / 400)))
    if title:
        ax.set_title(title, fontsize=max(6, int(10 * size_px / 400)))
    arr = figure_to_array(fig)
    if arr.shape[:2] != (size_px, size_px):
        # Inch/pixel rounding can be off by one for odd sizes; resize so frames always match.
        arr = np.asarray(Image.fromarray(arr).resize((size_px, size_px), Image.Resampling.BILINEAR))
    return arr
