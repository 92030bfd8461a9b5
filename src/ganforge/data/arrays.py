"""``arrays``: your own NumPy arrays — images or vectors, unlabelled, with classes or with any
condition vector.

Where the arrays are (``data.root``):

* an ``.npz`` file (``np.savez("mine.npz", x=x, y=y)``), or
* a folder holding ``x.npy`` and optionally ``y.npy``, ``x_test.npy``, ``y_test.npy`` and
  ``class_names.npy`` (one file per array, the same names as in the npz).

What the arrays hold:

``x`` (required)
    images ``(N, H, W)`` or ``(N, C, H, W)`` with C = 1 or 3, or vectors ``(N, D)``.
``y`` (optional)
    class indices ``(N,)`` of an integer dtype (0..K-1), or a condition matrix ``(N, K)``
    (float, int or bool: continuous values or 0/1 attributes).
``x_test``, ``y_test`` (optional)
    the ``data.split=test`` split, in the same layout (``y_test`` exactly when ``y`` is given).
``class_names`` (optional)
    ``(K,)`` strings naming the classes, or the K columns of a condition matrix.

How they are normalised (once, when loaded):

* images are stored as uint8 like every image set: uint8 as given; other integer images must lie
  in 0..255; float images with no value below 0 are read as [0, 1] (``round(255 x)``), float
  images with negative values as [-1, 1] (``round(127.5 (x + 1))``); any other float range is
  refused (ambiguous). Batches are then mapped to [-1, 1] like every image set.
* vectors are standardised per feature with the mean and std of the *training* ``x`` (both
  splits use the same statistics); the record ``extra["scaling"]["x"]`` maps samples back with
  :func:`ganforge.data.vectors.destandardize`.
* continuous condition columns are standardised the same way (``extra["scaling"]["y"]``); 0/1
  columns are kept as they are. New condition rows given at generate time must go through
  :func:`ganforge.data.vectors.standardize` with that record.

Everything is read with ``allow_pickle=False``; object arrays, wrong shapes, NaN/inf, mismatched
lengths, negative or non-integer class labels and unknown array names are one-line DataErrors.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ganforge.data.base import DATASETS, ROOT_FLAG, DataRoot, TensorData, one_line
from ganforge.data.vectors import fit_standardize, label_kind, standardize
from ganforge.errors import DataError

KEYS = ("x", "y", "x_test", "y_test", "class_names")
# What data.root must be, as the one-line errors say it.
WANTS = "an .npz file made with np.savez(path, x=x, y=y), or a folder holding x.npy"
SPLIT_KEYS = {"train": ("x", "y"), "test": ("x_test", "y_test")}
IMAGE_CHANNELS = (1, 3)
MAX_CLASSES = 100_000  # more is almost surely an id column, not class indices
RANGE_SLACK = 1e-3     # float images may overshoot [0, 1] / [-1, 1] by rounding error


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def locate(cfg: Any) -> Path:
    """The npz file or folder named by ``data.root``; a one-line DataError when it is not one."""
    if not cfg.root:
        raise DataError("dataset 'arrays' needs data.root: an .npz file with x (and y) or a "
                        "folder with x.npy (and y.npy), e.g. --data-root mine.npz")
    path = Path(cfg.root).expanduser()
    if path.is_dir():
        if not (path / "x.npy").is_file():
            raise DataError(f"'{path}' is a folder with no x.npy; {ROOT_FLAG} for arrays wants "
                            f"{WANTS} (np.save('x.npy', x))")
        return path
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(f"'{path}' is not an .npz file; pass an .npz made with "
                            "np.savez(path, x=x, y=y) or a folder holding x.npy and y.npy")
        return path
    raise DataError(f"'{path}' does not exist; {ROOT_FLAG} for arrays wants {WANTS}")


def _load_one(load: Any, name: str, where: str) -> np.ndarray:
    """One array via ``load()``, with pickled (object) arrays and damaged files as DataErrors."""
    try:
        return np.asarray(load())
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataError(f"{where}: '{name}' is an object (pickled) array, which is not "
                            "loaded for safety; save it with a numeric or string dtype, e.g. "
                            f"np.asarray({name}, dtype=np.float32)") from None
        raise DataError(f"{where}: '{name}' is unreadable ({one_line(err)}); save it again "
                        "with np.save / np.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{where}: '{name}' is unreadable ({one_line(err)}); save it again "
                        "with np.save / np.savez") from None


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an npz file or of a folder of ``<name>.npy`` files (no pickle).

    Raises:
        DataError: unreadable file, object arrays, or names other than :data:`KEYS`.
    """
    where = f"arrays '{path}'"
    if path.is_dir():
        names = sorted(p.stem for p in path.glob("*.npy"))
        unknown = [n for n in names if n not in KEYS]
        arrays = {n: _load_one(lambda n=n: np.load(path / f"{n}.npy", allow_pickle=False),
                               n, where) for n in names if n in KEYS}
    else:
        try:
            npz = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(f"{where} is not a readable .npz ({one_line(err)}); write it with "
                            "np.savez(path, x=x, y=y)") from None
        with npz:
            unknown = [n for n in npz.files if n not in KEYS]
            arrays = {n: _load_one(lambda n=n: npz[n], n, where) for n in npz.files
                      if n in KEYS}
    if unknown:
        raise DataError(f"{where} has unknown arrays {', '.join(map(repr, unknown))}; name "
                        f"them {', '.join(KEYS)} (y = labels or condition rows)")
    return arrays


# --------------------------------------------------------------------------------------------
# Checking and converting
# --------------------------------------------------------------------------------------------

def _check_numbers(a: np.ndarray, name: str, where: str) -> None:
    """Refuse non-numeric dtypes and NaN/inf values."""
    if a.dtype.kind not in "biuf":
        raise DataError(f"{where}: '{name}' has dtype {a.dtype}; store numbers (uint8 or float "
                        "images, float vectors, integer classes)")
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        count = int((~np.isfinite(a)).sum())
        raise DataError(f"{where}: '{name}' has {count} NaN/inf values (first at index "
                        f"{tuple(int(i) for i in bad)}); drop or fill those samples")


def to_uint8_images(x: np.ndarray, name: str, where: str) -> tuple[np.ndarray, str]:
    """(N, H, W) or (N, C, H, W) images of any numeric dtype -> (N, C, H, W) uint8.

    Returns:
        The uint8 images and how they were read: ``uint8``, ``int 0..255``, ``float [0, 1]``
        or ``float [-1, 1]``.
    """
    if x.dtype.kind == "b":
        raise DataError(f"{where}: '{name}' holds bool images; store them as uint8 0/255")
    if x.ndim == 3:
        x = x[:, None]
    c = x.shape[1]
    if c not in IMAGE_CHANNELS:
        hint = (f"; it looks channels-last, use {name}.transpose(0, 3, 1, 2)"
                if x.shape[3] in IMAGE_CHANNELS else "")
        raise DataError(f"{where}: '{name}' images {x.shape} have {c} channels; need (N, C, H, "
                        f"W) with C = 1 or 3{hint}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x), "uint8"
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if x.dtype.kind in "iu":
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer images '{name}' span {lo:g}..{hi:g}; they must "
                            "lie in 0..255 (store uint8)")
        return x.astype(np.uint8), "int 0..255"
    if lo >= -RANGE_SLACK and hi <= 1 + RANGE_SLACK:
        scaled, source = x * 255.0, "float [0, 1]"
    elif lo >= -1 - RANGE_SLACK and hi <= 1 + RANGE_SLACK:
        scaled, source = (x + 1.0) * 127.5, "float [-1, 1]"
    else:
        raise DataError(f"{where}: float images '{name}' span {lo:.4g}..{hi:.4g}; float images "
                        "must lie in [0, 1] or [-1, 1] (or store uint8 0..255)")
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8), source


def check_classes(y: np.ndarray, name: str, where: str) -> np.ndarray:
    """(N,) class indices -> int64; refuses float, bool and negative labels."""
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: 1-D '{name}' has dtype {y.dtype}; class labels must be "
                        f"integers ({name}.astype(np.int64)), a single continuous condition an "
                        f"(N, 1) column ({name}[:, None])")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        i = int(np.argmax(y < 0))
        raise DataError(f"{where}: '{name}' has the negative class {int(y[i])} at index {i}; "
                        "classes must be 0..K-1")
    if y.size and y.max() >= MAX_CLASSES:
        raise DataError(f"{where}: '{name}' has class {int(y.max())}; classes must be 0..K-1 "
                        f"(K < {MAX_CLASSES}); remap ids with np.unique({name}, "
                        "return_inverse=True)[1]")
    return y


def split_arrays(arrays: dict[str, np.ndarray], split: str, where: str
                 ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``(x, y)`` of ``split`` with shapes, lengths and dtypes checked (y may be None)."""
    x_key, y_key = SPLIT_KEYS[split]
    if x_key not in arrays:
        raise DataError(f"{where} has no '{x_key}' for data.split={split}; add {x_key} (and "
                        f"{y_key}) or use data.split=train")
    x, y = arrays[x_key], arrays.get(y_key)
    if ("y" in arrays) != (y is not None):
        missing = y_key if y is None else "y"
        raise DataError(f"{where}: '{missing}' is missing; give labels for both splits "
                        "(y and y_test) or for neither")
    _check_numbers(x, x_key, where)
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{where}: '{x_key}' has shape {x.shape}; need images (N, H, W) or "
                        f"(N, C, H, W), or vectors (N, D) (one feature: {x_key}[:, None])")
    if x.shape[0] == 0 or x[0].size == 0:
        raise DataError(f"{where}: '{x_key}' {x.shape} is empty; it needs samples")
    if y is not None:
        _check_numbers(y, y_key, where)
        if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
            raise DataError(f"{where}: '{y_key}' has shape {y.shape}; need class indices (N,) "
                            "or condition rows (N, K)")
        if len(y) != len(x):
            raise DataError(f"{where}: '{y_key}' has {len(y)} rows for {len(x)} samples in "
                            f"'{x_key}'; give one label row per sample")
    return x, y


def _names(arrays: dict[str, np.ndarray], count: int, what: str, where: str
           ) -> Optional[list[str]]:
    """``class_names`` as a list of ``count`` strings, or None when absent."""
    names = arrays.get("class_names")
    if names is None:
        return None
    if names.dtype.kind not in "US" or names.ndim != 1:
        raise DataError(f"{where}: 'class_names' must be a 1-D string array, got "
                        f"{names.dtype} {names.shape}")
    if count and len(names) != count:
        raise DataError(f"{where}: {len(names)} class_names for {count} {what}; give one name "
                        "each")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------

def _labels(arrays: dict[str, np.ndarray], y: Optional[np.ndarray], y_key: str, where: str
            ) -> tuple[Optional[torch.Tensor], int, Optional[list[str]], Optional[dict]]:
    """Labels of the split: (y tensor, n_classes, class_names, scaling record of y)."""
    if y is None:
        if "class_names" in arrays:
            raise DataError(f"{where} has class_names but no y; add the labels y or drop "
                            "class_names")
        return None, 0, None, None
    train_y = arrays["y"]
    if train_y.ndim != y.ndim or (y.ndim == 2 and train_y.shape[1] != y.shape[1]):
        raise DataError(f"{where}: '{y_key}' {y.shape} does not match y {train_y.shape}; "
                        "both splits need the same kind of labels")
    if y.ndim == 1:
        train_classes = check_classes(train_y, "y", where)
        found = int(train_classes.max()) + 1
        names = _names(arrays, 0, "classes", where)
        n_classes = max(found, len(names or []))
        if names is not None and len(names) < found:
            raise DataError(f"{where}: {len(names)} class_names for classes 0..{found - 1}; "
                            "give one name per class")
        y_cls = check_classes(y, y_key, where)
        if y_cls.max() >= n_classes:
            raise DataError(f"{where}: '{y_key}' has class {int(y_cls.max())} but y only "
                            f"0..{n_classes - 1}; use the same classes in both splits")
        return torch.from_numpy(y_cls), n_classes, names, None
    # A condition matrix: continuous columns standardised with the training rows' statistics.
    record = fit_standardize(train_y.astype(np.float64), keep_binary=True)
    if all(m == 0 and s == 1 for m, s in zip(record["mean"], record["std"])):
        record = None  # nothing rescaled (e.g. all columns 0/1 attributes)
    rows = standardize(y.astype(np.float64), record)
    return rows, 0, _names(arrays, y.shape[1], "condition columns", where), record


@DATASETS.register("arrays", info=DataRoot(WANTS, file=True, downloads=False))
def build_arrays(cfg: Any) -> TensorData:
    """Your own arrays (data.root = an .npz or a folder of .npy), with classes or condition rows.

    ``x``: images or vectors; ``y``: optional class indices (N,) or condition rows (N, K); see
    the module docstring for the layout and the normalisation.

    Returns:
        TensorData with x (N, C, H, W) uint8 or (N, D) float32 standardised vectors; y (N,)
        int64 classes, (N, K) float32 condition rows, or None; ``extra["scaling"]`` holds the
        records of x and y (None when not rescaled), ``extra["label_kind"]`` the label kind and,
        for images, ``extra["image_source"]`` how the pixels were read.
    """
    path = locate(cfg)
    where = f"arrays '{path}'"
    arrays = read_arrays(path)
    x, y = split_arrays(arrays, cfg.split, where)
    x_key, y_key = SPLIT_KEYS[cfg.split]
    train_x = arrays["x"] if cfg.split != "train" else x
    if cfg.split != "train":
        split_arrays(arrays, "train", where)
        if train_x.shape[1:] != x.shape[1:]:
            raise DataError(f"{where}: '{x_key}' samples {x.shape[1:]} differ from x's "
                            f"{train_x.shape[1:]}; both splits need one sample shape")

    extra: dict[str, Any] = {}
    x_record = None
    if x.ndim == 2:
        x_record = fit_standardize(train_x)
        x_t = standardize(x.astype(np.float64), x_record)
        kind = f"{x.shape[1]}-d vectors"
    else:
        x_np, extra["image_source"] = to_uint8_images(x, x_key, where)
        x_t = torch.from_numpy(x_np)
        kind = f"images {tuple(x_t.shape[1:])} ({extra['image_source']})"
    y_t, n_classes, names, y_record = _labels(arrays, y, y_key, where)
    extra["scaling"] = {"x": x_record, "y": y_record}
    extra["label_kind"] = label_kind(y_t)
    if y_t is None:
        labels = "no labels"
    elif y_t.dim() == 1:
        labels = f"{n_classes} classes"
    else:
        labels = f"{y_t.shape[1]} {extra['label_kind']} condition columns"
    return TensorData(
        x=x_t,
        y=y_t,
        n_classes=n_classes,
        name="arrays",
        class_names=names,
        source=f"arrays {path} ({cfg.split} split: {len(x_t)} {kind}, {labels})",
        extra=extra,
    )
