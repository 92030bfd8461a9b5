"""Tensors to pictures: uint8 conversion, grids (with class labels), PNG files, off-screen figures.

Generators in ganforge output images as float (N, C, H, W) tensors in [-1, 1] (tanh range). This
module turns them into (H, W, 3) uint8 arrays, the one image format every writer here accepts
(Pillow, TensorBoard ``dataformats="HWC"``). Every file is written through
:func:`ganforge.fileio.atomic_path`, so a killed run never leaves a half-written PNG.
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

PathLike = str | os.PathLike[str]


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
