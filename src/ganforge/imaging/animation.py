"""Animated GIFs of sample grids (the fixed-noise grids over training).

One shared palette for every frame, no dithering, frames subsampled to a maximum count with the
first and the last always kept, and optionally the last frame put first so a still of the GIF
shows the final grid. Written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from ganforge.fileio import atomic_path
from ganforge.imaging.pictures import PathLike

Frame = np.ndarray | PathLike


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
