"""In-memory datasets and the on-device batch sampler.

Every dataset is materialised once as a :class:`TensorData`: one uint8 tensor of images (or a
float tensor of vectors for toy data) plus labels. Batches are index-sliced from it, moved to
the training device and converted/normalised there — no per-sample PIL transform in the hot loop.

This module also holds the small helpers every dataset module shares: where data lives on disk
(:func:`default_root`, :func:`data_root`), what a dataset reads from its root
(:class:`DataRoot`, declared when it registers, checked once by :func:`check_root`) and the
one-line "files missing" error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from ganforge.errors import DataError
from ganforge.registry import DATASETS

# Environment variable that moves the default data folder (e.g. to a big scratch disk).
DATA_ENV = "GANFORGE_DATA"

# Names of ``TensorData.extra`` entries that are per-sample (N, ...) tensors aligned with ``x``;
# :meth:`TensorData.head` slices them together with ``x`` so they stay aligned after a limit.
PER_SAMPLE_EXTRAS = ("modes",)


@dataclass
class TensorData:
    """A whole dataset held in memory.

    Attributes:
        x: (N, C, H, W) uint8 images in 0..255, or (N, D) float32 vectors (toy data).
        y: (N,) int64 class indices, (N, A) float32 attribute vectors in {0, 1}, or None.
        n_classes: number of classes for class labels (0 when y is None or attributes).
        class_names: optional names of the classes (len n_classes) or attributes (len A).
        name: the dataset registry key it came from.
        source: human-readable provenance (files, split) for the run folder.
        extra: free-form metadata (JSON-able values or tensors). Entries named in
            ``PER_SAMPLE_EXTRAS`` are (N, ...) tensors aligned with ``x``.
    """

    x: torch.Tensor
    y: Optional[torch.Tensor]
    n_classes: int
    name: str
    class_names: Optional[list[str]] = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.x.dim() == 4

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def head(self, n: int) -> TensorData:
        """The first ``n`` samples (all of them when ``n >= len(self)``).

        The slices are cloned so the full tensors can be freed (a view would keep them alive).
        """
        if n >= len(self):
            return self
        extra = dict(self.extra)
        for key in PER_SAMPLE_EXTRAS:
            if isinstance(extra.get(key), torch.Tensor):
                extra[key] = extra[key][:n].clone()
        y = None if self.y is None else self.y[:n].clone()
        return replace(self, x=self.x[:n].clone(), y=y, extra=extra)


    def select_classes(self, classes: list[int]) -> TensorData:
        """Only the samples of ``classes``, relabelled 0..len(classes)-1 in the order given
        (seed 000's 5-class run: ``data.classes=[0,1,2,3,4]``).

        Raises:
            DataError: the dataset has no class labels, or a class is out of range.
        """
        if self.y is None or self.y.dim() != 1 or self.n_classes < 2:
            raise DataError(f"data.classes picks classes, but dataset '{self.name}' has no "
                            "class labels; remove data.classes")
        bad = [c for c in classes if not 0 <= c < self.n_classes]
        if bad:
            raise DataError(f"data.classes has {bad[0]}, but dataset '{self.name}' has classes "
                            f"0..{self.n_classes - 1}; pick from those")
        lookup = torch.full((self.n_classes,), -1, dtype=torch.long)
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
        keep = torch.nonzero(lookup[self.y.cpu()] >= 0).flatten()
        extra = dict(self.extra)
        for key in PER_SAMPLE_EXTRAS:
            if isinstance(extra.get(key), torch.Tensor):
                extra[key] = extra[key][keep.to(extra[key].device)].clone()
        names = [self.class_names[c] for c in classes] if self.class_names else None
        return replace(self, x=self.x[keep.to(self.x.device)].clone(),
                       y=lookup[self.y.cpu()[keep]].to(self.y.device), n_classes=len(classes),
                       class_names=names, extra=extra,
                       source=f"{self.source}; classes {classes} as 0..{len(classes) - 1}")


# A dataset builder: (data_cfg) -> TensorData. Raises DataError with a one-line fix. Each one
# registers with ``info=DataRoot(...)`` when it reads its root differently from the default,
# and with ``settings=`` a dataclass of the options only it takes (``data.toy`` ...).
DatasetBuilder = Callable[[Any], TensorData]


# --------------------------------------------------------------------------------------------
# Where the files live
# --------------------------------------------------------------------------------------------

def default_root() -> Path:
    """The data folder used when ``data.root`` is not set.

    ``$GANFORGE_DATA`` when set, else ``~/.cache/ganforge/data``. Nothing is created here:
    folders are made only when something is downloaded or cached.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ganforge" / "data"


def data_root(cfg: Any) -> Path:
    """``cfg.root`` (user-expanded) when given, else :func:`default_root`."""
    return Path(cfg.root).expanduser() if cfg.root else default_root()


# The option that sets the root, as the messages name it.
ROOT_FLAG = "--data-root (data.root)"


@dataclass(frozen=True)
class DataRoot:
    """What a dataset reads from ``data.root``, declared when it registers
    (``DATASETS.register(name, info=DataRoot(...))``).

    Attributes:
        wants: what the root must be, as the messages say it ("the folder that holds the MNIST
            files"); empty for a dataset that ignores its root (generated or embedded data).
        file: a file is a valid root too (``arrays`` takes an .npz).
        downloads: missing files are downloaded into the root when ``data.download`` is true, so
            a root that does not exist yet is fine then.
    """

    wants: str
    file: bool = False
    downloads: bool = True


# Datasets that generate their samples or carry them in the package.
NO_ROOT = DataRoot(wants="", downloads=False)


def root_declaration(name: str) -> DataRoot:
    """What dataset ``name`` declared about its root; by default a folder of its downloadable
    files."""
    declared = DATASETS.info(name)
    return declared if declared is not None else DataRoot(f"the folder that holds the {name} "
                                                          "files")


def check_root(cfg: Any) -> None:
    """Refuse, in one line, a root that cannot be what dataset ``cfg.name`` reads.

    A file where the dataset wants a folder (or a file on the way to it), and a root the user
    named that does not exist when nothing will download into it. Done once here, before the
    builder runs, so that a wrong root is not reported as a failed download or missing files.

    Raises:
        DataError: naming the root, what it is and what the dataset wants instead.
    """
    declared = root_declaration(cfg.name)
    if not declared.wants:
        return
    root = data_root(cfg)
    blocker = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir() and not (declared.file and blocker == root):
        raise DataError(f"'{blocker}' is a file; {ROOT_FLAG} for {cfg.name} wants "
                        f"{declared.wants}")
    if cfg.root and not root.exists() and not (declared.downloads and cfg.download):
        fix = ", or set data.download=true to download them there" if declared.downloads else ""
        raise DataError(f"'{root}' does not exist; {ROOT_FLAG} for {cfg.name} wants "
                        f"{declared.wants}{fix}")


def find_file(name: str, folders: Sequence[Path], compressed: bool = False) -> Optional[Path]:
    """First existing ``folder/name`` (or ``folder/name.gz`` when ``compressed``), else None."""
    for folder in folders:
        for candidate in (name, f"{name}.gz") if compressed else (name,):
            path = folder / candidate
            if path.is_file():
                return path
    return None


# --------------------------------------------------------------------------------------------
# One-line errors
# --------------------------------------------------------------------------------------------

def one_line(err: BaseException, limit: int = 160) -> str:
    """``Type: message`` squeezed onto one short line, for embedding in a DataError."""
    text = re.sub(r"\s+", " ", str(err)).strip()
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def missing_error(
    dataset: str,
    split: str,
    files: Sequence[str],
    folder: Path,
    download_error: Optional[BaseException] = None,
    note: str = "",
) -> DataError:
    """The DataError for a dataset whose files are not on disk.

    Args:
        dataset: registry key, e.g. "mnist".
        split: "train" or "test".
        files: the file names the user should provide.
        folder: where they should go.
        download_error: the exception of a failed download, when one was tried.
        note: a short addition, e.g. "(.gz also accepted)".
    """
    names = ", ".join(files)
    what = f"put {names} {note + ' ' if note else ''}in '{folder}'"
    if download_error is None:
        return DataError(
            f"{dataset} {split} split not found: {what}, or set data.download=true "
            f"(downloading needs network)"
        )
    return DataError(
        f"{dataset} {split} split could not be downloaded ({one_line(download_error)}); "
        f"downloading needs network, or {what} by hand"
    )
