"""Pictures of samples: uint8 conversion, grids, PNGs, animated GIFs, toy-2D scatter frames.

This room knows nothing about runs: it turns tensors into pictures and files, for the run layer
(``Run.grid``), the metrics, the reports and the trainer alike.

Generators in ganforge output images as float (N, C, H, W) tensors in [-1, 1] (tanh range). This
module turns them into (H, W, 3) uint8 arrays, the one image format every writer here accepts
(Pillow, TensorBoard ``dataformats="HWC"``). Every file is written through
:func:`ganforge.fileio.atomic_path`, so a killed run never leaves a half-written PNG or GIF.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import torch
import torchvision.utils
from PIL import Image, ImageDraw, ImageFont

from ganforge.fileio import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "agg_figure",
    "figure_to_array",
    "label_grid",
    "make_grid",
    "save_animation",
    "save_images",
    "save_png",
    "scatter_image",
    "to_plane",
    "to_uint8",
]

PathLike = str | os.PathLike[str]
Frame = np.ndarray | PathLike


# Figures are drawn on a private Agg canvas instead of pyplot: no window, no global backend
# switch, no figure registry that leaks memory over a long run. Matplotlib is imported inside
# the functions so importing ganforge stays fast.
def agg_figure(width_in: float, height_in: float, dpi: int = 100) -> "Figure":
    """A figure attached to a private Agg canvas (no pyplot, no backend change).

    Args:
        width_in: width in inches.
        height_in: height in inches.
        dpi: pixels per inch.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig: "Figure") -> np.ndarray:
    """Render ``fig`` and return its pixels as an (H, W, 3) uint8 array."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())  # type: ignore[attr-defined]
    return rgba[:, :, :3].copy()


def _as_nchw(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Accept (N, C, H, W) or a single (C, H, W) image as tensor or array; return (N, C, H, W)."""
    t = images.detach() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(t.shape)}")
    return t


def to_uint8(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Map float images in [-1, 1] to uint8 in [0, 255] (-1 -> 0, 0 -> 128, 1 -> 255).

    Args:
        images: (N, C, H, W) or (C, H, W) float tensor/array in [-1, 1], on any device. Values
            outside the range are clipped; NaN becomes 0 (black).

    Returns:
        (N, C, H, W) uint8 CPU tensor. The conversion runs on the input's device so only the
        4x smaller uint8 result crosses to the host.
    """
    t = _as_nchw(images).float()
    t = torch.nan_to_num(t, nan=-1.0)
    return ((t + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def _grid_shape(n: int, nrow: int) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` images with ``nrow`` images per row."""
    if nrow < 1:
        raise ValueError(f"nrow must be at least 1, got {nrow}")
    cols = min(nrow, n)
    return math.ceil(n / cols), cols


def make_grid(
    images: torch.Tensor | np.ndarray, nrow: int, padding: int = 2, pad_value: int = 0
) -> np.ndarray:
    """Tile images into one picture.

    Args:
        images: (N, C, H, W) float in [-1, 1], C = 1 (grayscale) or 3 (RGB).
        nrow: images per row (torchvision's meaning: the number of columns).
        padding: pixels between images and around the border.
        pad_value: uint8 gray level of the padding.

    Returns:
        (rows * (H + padding) + padding, cols * (W + padding) + padding, 3) uint8 array, with
        cols = min(nrow, N) and rows = ceil(N / cols). E.g. 10 images of 28x28 with nrow=5 and
        padding=2 give (62, 152, 3).
    """
    u8 = to_uint8(images)
    n, c = u8.shape[:2]
    if n == 0:
        raise ValueError("cannot make a grid of zero images")
    if c == 1:
        u8 = u8.expand(-1, 3, -1, -1)
    elif c != 3:
        raise ValueError(f"expected 1 or 3 channels, got {c}")
    _grid_shape(n, nrow)  # validates nrow
    if n == 1:
        # torchvision returns a lone image unpadded; pad it so the size formula always holds.
        grid = torch.nn.functional.pad(u8[0], (padding,) * 4, value=pad_value)
    else:
        grid = torchvision.utils.make_grid(u8, nrow=nrow, padding=padding, pad_value=pad_value)
    return grid.permute(1, 2, 0).contiguous().numpy()


def save_png(array_hwc_uint8: np.ndarray, path: PathLike) -> Path:
    """Write an image as PNG, atomically.

    Args:
        array_hwc_uint8: (H, W, 3) RGB, (H, W, 4) RGBA, (H, W, 1) or (H, W) grayscale uint8.
        path: destination; parent folders are created.

    Returns:
        ``path`` as a Path.
    """
    arr = np.asarray(array_hwc_uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {arr.dtype} {arr.shape}")
    image = Image.fromarray(np.ascontiguousarray(arr))
    path = Path(path)
    with atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format cannot be guessed from it.
        image.save(tmp, format="PNG")
    return path


def save_images(
    images: torch.Tensor | np.ndarray, folder: PathLike, prefix: str, start: int = 0
) -> list[Path]:
    """Write one PNG per sample: ``folder/{prefix}_{index:06d}.png``.

    Args:
        images: (N, C, H, W) float in [-1, 1], C = 1 or 3.
        folder: output folder, created if needed.
        prefix: file name prefix, e.g. ``"sample"`` (empty: just the index).
        start: index of the first image, so batches of one run continue the numbering.

    Returns:
        The N paths written, in order.
    """
    u8 = to_uint8(images).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    folder = Path(folder)
    stem = f"{prefix}_" if prefix else ""
    return [save_png(img, folder / f"{stem}{start + i:06d}.png") for i, img in enumerate(u8)]


def _subsample_indices(n: int, max_frames: Optional[int]) -> list[int]:
    """Evenly spaced indices into ``n`` frames, at most ``max_frames``, always ending at n - 1."""
    if max_frames is None or max_frames >= n:
        return list(range(n))
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if max_frames == 1:
        return [n - 1]  # the final state is the frame worth keeping
    k = max_frames - 1
    # Integer rounding of i * (n-1) / k: exact, strictly increasing, first 0 and last n - 1.
    return [(i * (n - 1) + k // 2) // k for i in range(max_frames)]


def _load_frame(frame: Frame) -> Image.Image:
    if isinstance(frame, (str, os.PathLike)):
        with Image.open(frame) as img:
            return img.convert("RGB")
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise ValueError(f"animation frames must be (H, W, 3) uint8, got {arr.dtype} {arr.shape}")
    return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")


def _shared_palette(images: Sequence[Image.Image], colors: int) -> np.ndarray:
    """(K, 3) uint8 colours, K <= ``colors``, fitted to all ``images`` at once: their exact
    colours when there are few enough (gray sample grids), else a median cut of thumbnails (each
    frame shrunk to at most ~16k pixels first, so the cost does not grow with the frame size)."""
    packed = np.unique(np.concatenate([_packed(img) for img in images]))
    if len(packed) <= colors:
        return _unpacked(packed)
    thumbs = []
    for img in images:
        thumb = img.copy()
        thumb.thumbnail((128, 128))
        thumbs.append(np.asarray(thumb).reshape(-1, 3))
    mosaic = Image.fromarray(np.concatenate(thumbs)[:, None, :])
    fitted = mosaic.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    used = len(fitted.getcolors(colors) or ()) or colors
    return np.asarray(fitted.getpalette()[:3 * used], dtype=np.uint8).reshape(-1, 3)


def _packed(img: Image.Image) -> np.ndarray:
    """(H*W,) int32 0xRRGGBB of an RGB image."""
    a = np.asarray(img, dtype=np.int32).reshape(-1, 3)
    return (a[:, 0] << 16) | (a[:, 1] << 8) | a[:, 2]


def _unpacked(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], 1).astype(np.uint8)


def _to_palette(img: Image.Image, palette: np.ndarray) -> Image.Image:
    """``img`` as a ``P`` image on ``palette``, each colour mapped to its nearest entry exactly
    (Pillow's own mapping works on a coarse colour cube and merges close gray levels)."""
    colours, inverse = np.unique(_packed(img), return_inverse=True)
    diff = _unpacked(colours)[:, None, :].astype(np.int32) - palette[None].astype(np.int32)
    nearest = (diff * diff).sum(axis=2).argmin(axis=1).astype(np.uint8)
    out = Image.frombytes("P", img.size, nearest[inverse].tobytes())
    out.putpalette(palette.flatten().tolist())
    return out


def save_animation(
    frames: Sequence[Frame],
    path: PathLike,
    duration_ms: int = 200,
    max_frames: Optional[int] = None,
    colors: int = 32,
    max_width: Optional[int] = None,
    lead_with_last: bool = False,
) -> Path:
    """Write frames as an animated GIF that loops forever, atomically.

    Every frame is mapped to one shared palette of ``colors`` colours, drawn from all the kept
    frames, without dithering: sample grids are mostly gray levels, and per-frame palettes with
    dithered noise are what make a GIF of early, noisy grids large.

    Args:
        frames: (H, W, 3) uint8 arrays or paths of image files (e.g. the per-epoch grid PNGs),
            all the same size, oldest first.
        path: destination ``.gif``.
        duration_ms: display time of each frame.
        max_frames: keep at most this many, evenly spaced; the first and the last frame are
            always kept (with max_frames=1, only the last). Only the kept frames are loaded.
        colors: size of the shared palette (2..256).
        max_width: frames wider than this are scaled down (aspect kept); None keeps the size.
        lead_with_last: put a copy of the last frame first, so that a still of the GIF (a
            thumbnail, a print) shows the final grid, not the first; it then plays in order.

    Returns:
        ``path`` as a Path.

    Note:
        Pillow merges consecutive identical frames into one longer frame, so an animation of
        repeated pictures reports fewer ``n_frames`` than were passed.
    """
    if len(frames) == 0:
        raise ValueError("cannot write an animation with no frames")
    if not 2 <= colors <= 256:
        raise ValueError(f"colors must be in 2..256, got {colors}")
    images = [_load_frame(frames[i]) for i in _subsample_indices(len(frames), max_frames)]
    sizes = {img.size for img in images}
    if len(sizes) > 1:
        raise ValueError(f"animation frames differ in size: {sorted(sizes)}")
    width, height = images[0].size
    if max_width is not None and width > max_width:
        size = (max_width, max(1, round(height * max_width / width)))
        images = [img.resize(size, Image.LANCZOS) for img in images]
    palette = _shared_palette(images, colors)
    quantized = [_to_palette(img, palette) for img in images]
    if lead_with_last and len(quantized) > 1:
        quantized.insert(0, quantized[-1])
    path = Path(path)
    with atomic_path(path) as tmp:
        quantized[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=quantized[1:],
            duration=int(duration_ms),
            loop=0,
            optimize=False,
        )
    return path


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


def _default_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        # Pillow without FreeType (or older than 10.1) only has the fixed bitmap font.
        return ImageFont.load_default()


def label_grid(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | Sequence[int],
    class_names: Optional[Sequence[str]],
    nrow: int,
    padding: int = 2,
) -> np.ndarray:
    """A :func:`make_grid` with each row's class name written to its left.

    Meant for class-conditional samples laid out one class per row; a row mixing classes is
    labelled with its distinct names joined by "/".

    Args:
        images: (N, C, H, W) float in [-1, 1], C = 1 or 3.
        labels: (N,) integer class of each image.
        class_names: name of each class index; None writes the index itself.
        nrow: images per row.
        padding: pixels between images.

    Returns:
        (H_grid, margin + W_grid, 3) uint8 array, the grid of :func:`make_grid` with a black
        margin on the left holding the labels.
    """
    t = _as_nchw(images)
    label_list = [int(v) for v in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    if len(label_list) != t.shape[0]:
        raise ValueError(f"got {t.shape[0]} images but {len(label_list)} labels")
    grid = make_grid(t, nrow=nrow, padding=padding)
    rows, cols = _grid_shape(t.shape[0], nrow)
    h = t.shape[2]

    def name(k: int) -> str:
        return class_names[k] if class_names is not None and 0 <= k < len(class_names) else str(k)

    texts = []
    for r in range(rows):
        distinct = list(dict.fromkeys(label_list[r * cols : (r + 1) * cols]))
        texts.append("/".join(name(k) for k in distinct))

    font = _default_font(size=int(min(max(10, h * 0.4), 24)))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [measure.textbbox((0, 0), text, font=font) for text in texts]
    gap = 4
    margin = max(box[2] - box[0] for box in boxes) + 2 * gap
    canvas = Image.new("RGB", (margin + grid.shape[1], grid.shape[0]), (0, 0, 0))
    canvas.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for r, (text, box) in enumerate(zip(texts, boxes)):
        top = padding + r * (h + padding)
        y = top + (h - (box[3] - box[1])) / 2 - box[1]  # centre the ink, not the line box
        draw.text((gap - box[0], y), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)
