"""Grids, PNGs, GIF animations, scatter frames, labelled grids and atomic image writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.imaging.animation import _subsample_indices
from ganforge.imaging import (
    label_grid,
    make_grid,
    save_animation,
    save_images,
    save_png,
    scatter_image,
    to_uint8,
)


def test_to_uint8_maps_range_endpoints_and_clips() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0, -3.0, 3.0, float("nan")]).view(1, 1, 1, 6)
    assert to_uint8(x).flatten().tolist() == [0, 128, 255, 0, 255, 0]
    assert to_uint8(x).dtype == torch.uint8


def test_make_grid_shape_arithmetic() -> None:
    # rows*(H+pad)+pad by cols*(W+pad)+pad: 2*(28+2)+2 = 62, 5*(28+2)+2 = 152.
    grid = make_grid(torch.zeros(10, 1, 28, 28), nrow=5, padding=2)
    assert grid.shape == (62, 152, 3) and grid.dtype == np.uint8
    assert make_grid(torch.zeros(7, 3, 8, 8), nrow=3, padding=1).shape == (3 * 9 + 1, 3 * 9 + 1, 3)
    assert make_grid(torch.zeros(1, 3, 8, 8), nrow=4, padding=2).shape == (12, 12, 3)
    assert make_grid(torch.zeros(2, 3, 8, 8), nrow=8, padding=0).shape == (8, 16, 3)


def test_make_grid_value_mapping_and_grayscale() -> None:
    images = torch.stack([torch.full((1, 4, 4), -1.0), torch.full((1, 4, 4), 1.0)])
    grid = make_grid(images, nrow=2, padding=2, pad_value=77)
    assert (grid[2:6, 2:6] == 0).all()  # -1 -> 0
    assert (grid[2:6, 8:12] == 255).all()  # 1 -> 255
    assert (grid[0, :] == 77).all() and (grid[:, 6] == 77).all()
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()
    with pytest.raises(ValueError):
        make_grid(torch.zeros(2, 2, 4, 4), nrow=2)


def test_save_png_and_save_images_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = save_png(arr, tmp_path / "sub" / "grid.png")
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert (np.asarray(img) == arr).all()

    images = torch.linspace(-1, 1, 3).view(3, 1, 1, 1).expand(3, 3, 4, 5)
    paths = save_images(images, tmp_path / "samples", "sample", start=10)
    assert [p.name for p in paths] == [f"sample_0000{i}.png" for i in (10, 11, 12)]
    with Image.open(paths[-1]) as img:
        assert img.size == (5, 4) and (np.asarray(img) == 255).all()
    with pytest.raises(ValueError):
        save_png(np.zeros((4, 4, 3), dtype=np.float32), tmp_path / "bad.png")


def test_subsample_indices_are_even_and_keep_first_and_last() -> None:
    assert _subsample_indices(10, 4) == [0, 3, 6, 9]
    assert _subsample_indices(5, None) == [0, 1, 2, 3, 4]
    assert _subsample_indices(5, 9) == [0, 1, 2, 3, 4]
    assert _subsample_indices(7, 1) == [6]
    for n in range(1, 40):
        for k in range(2, n + 1):
            idx = _subsample_indices(n, k)
            assert len(idx) == k and idx[0] == 0 and idx[-1] == n - 1
            assert all(a < b for a, b in zip(idx, idx[1:]))


def _solid_frames(n: int) -> list[np.ndarray]:
    # Distinct solid colors, so Pillow cannot merge consecutive frames.
    return [np.full((6, 8, 3), (20 * i, 255 - 20 * i, 100), dtype=np.uint8) for i in range(n)]


def test_animation_subsamples_and_keeps_last_frame(tmp_path: Path) -> None:
    frames = _solid_frames(10)
    path = save_animation(frames, tmp_path / "progress.gif", duration_ms=120, max_frames=4)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4
        assert gif.info.get("loop") == 0
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    assert np.abs(last.astype(int) - frames[-1].astype(int)).max() <= 8


def test_animation_from_png_paths_without_limit(tmp_path: Path) -> None:
    paths = [save_png(f, tmp_path / f"grid_{i}.png") for i, f in enumerate(_solid_frames(3))]
    path = save_animation(paths, tmp_path / "anim.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError):
        save_animation([], tmp_path / "empty.gif")
    with pytest.raises(ValueError):
        mixed = [np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)]
        save_animation(mixed, tmp_path / "mixed_sizes.gif")


def test_animation_led_by_the_last_frame(tmp_path: Path) -> None:
    """A still of a GIF shows its first frame: with ``lead_with_last`` that is the last grid,
    pixel for pixel (few colours: the shared palette holds them exactly), then the grids play
    oldest to newest."""
    frames = _solid_frames(5)
    path = save_animation(frames, tmp_path / "led.gif", max_frames=3, lead_with_last=True)
    with Image.open(path) as gif:
        decoded = []
        for i in range(gif.n_frames):
            gif.seek(i)
            decoded.append(np.asarray(gif.convert("RGB")))
    assert [f[0, 0].tolist() for f in decoded] == [
        frames[i][0, 0].tolist() for i in (4, 0, 2, 4)]
    assert np.array_equal(decoded[0], frames[-1])
    one = save_animation(frames[:1], tmp_path / "one.gif", lead_with_last=True)
    with Image.open(one) as gif:
        assert gif.n_frames == 1  # nothing to lead: the only frame is the last


def test_scatter_image_shape_and_fixed_geometry() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(200, 2))
    a = scatter_image(torch.from_numpy(rng.normal(size=(50, 2))).float(), ref, size_px=160, lim=3.0)
    b = scatter_image(rng.normal(size=(50, 2)) * 0.1, None, size_px=160, lim=(-3, 3))
    assert a.shape == b.shape == (160, 160, 3) and a.dtype == np.uint8
    assert scatter_image(rng.normal(size=(5, 2)), size_px=123).shape == (123, 123, 3)
    # Same limits and size: the axes frame (long dark vertical spines) sits in the same columns.
    def spine_columns(img: np.ndarray) -> np.ndarray:
        return np.flatnonzero((img < 60).all(axis=2).sum(axis=0) > 100)

    assert len(spine_columns(a)) >= 2
    np.testing.assert_array_equal(spine_columns(a), spine_columns(b))
    with pytest.raises(ValueError):
        scatter_image(np.zeros((5, 3)))


def test_label_grid_writes_names_left_of_each_row() -> None:
    images = torch.full((6, 3, 16, 16), -1.0)  # black images: only the text is bright
    grid = make_grid(images, nrow=3)
    labelled = label_grid(images, torch.tensor([0, 0, 0, 1, 1, 1]), ["zero", "one"], nrow=3)
    margin = labelled.shape[1] - grid.shape[1]
    assert labelled.shape[0] == grid.shape[0] and margin > 0
    assert (labelled[:, margin:] == grid).all()
    for row in range(2):
        top = 2 + row * 18
        assert labelled[top : top + 16, :margin].max() > 128, f"no label drawn for row {row}"
    with pytest.raises(ValueError):
        label_grid(images, [0, 1], None, nrow=3)


def test_failing_image_writes_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_write_then_fail(self: Image.Image, fp: object, *args: object, **kw: object) -> None:
        Path(fp).write_bytes(b"\x89PNG partial")  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_write_then_fail)
    with pytest.raises(OSError):
        save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "grid.png")
    with pytest.raises(OSError):
        save_animation(_solid_frames(3), tmp_path / "anim.gif")
    assert list(tmp_path.iterdir()) == []


def test_animation_shares_one_small_palette_and_keeps_distinct_levels(tmp_path: Path) -> None:
    """Every frame is drawn from one palette of at most ``colors`` entries; gray levels that
    differ by one step stay apart when there are few enough of them (no merged frames)."""
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 256, (24, 30, 3), dtype=np.uint8) for _ in range(5)]
    path = save_animation(noisy, tmp_path / "noisy.gif", colors=8)
    with Image.open(path) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            assert len(gif.convert("RGB").getcolors(256)) <= 8
        assert gif.n_frames == 5
    grays = [np.full((6, 8, 3), level, np.uint8) for level in (126, 127, 128)]
    with Image.open(save_animation(grays, tmp_path / "grays.gif")) as gif:
        assert gif.n_frames == 3
        levels = []
        for i in range(3):
            gif.seek(i)
            levels.append(int(np.asarray(gif.convert("RGB"))[0, 0, 0]))
    assert levels == [126, 127, 128]


def test_animation_scales_wide_frames_down(tmp_path: Path) -> None:
    frames = [np.zeros((10, 100, 3), np.uint8), np.full((10, 100, 3), 255, np.uint8)]
    with Image.open(save_animation(frames, tmp_path / "wide.gif", max_width=50)) as gif:
        assert gif.size == (50, 5)
