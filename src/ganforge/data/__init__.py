"""Datasets as in-memory tensors, built once, and the on-device batch sampler.

``build_dataset(cfg.data)`` calls the registered builder (see ``DATASETS.names()``), then
applies the generic steps once to the whole uint8 tensor, in this order:

1. ``data.limit``: keep the first N samples;
2. ``data.channels``: 1 <-> 3 channels (gray repeated to RGB, RGB to gray by luma);
3. ``data.image_size``: antialiased resize to a square of that side.

Training then draws batches with :class:`BatchSampler`, sized by the run's :class:`BatchPlan`
(per rank and over all ranks). Importing this package only registers
the builders: no files are read, nothing is downloaded and CUDA is not touched.
"""

from __future__ import annotations

import torch

from ganforge.data import (  # noqa: F401  (imported so that each module registers its dataset)
    arrays,
    celeba,
    embedded,
    image_folder,
    kuzushiji,
    synthetic,
    torchvision_sets,
    toy,
    stacked_mnist,
    pairs,
)
from ganforge.data.base import (DATASETS, TensorData, check_root, data_root, default_root,
                                root_declaration)
from ganforge.data.batch_plan import BatchPlan
from ganforge.data.sampler import BatchSampler
from ganforge.data.transforms import resize, to_channels
from ganforge.errors import ConfigError, DataError

__all__ = [
    "DATASETS",
    "KNOWN_SHAPES",
    "shape_without_loading",
    "BatchPlan",
    "BatchSampler",
    "TensorData",
    "build_dataset",
    "data_root",
    "default_root",
]

# Native sample shape and class count of each dataset, for commands that need the shape without
# reading the data (``ganforge summary`` offline). image-folder and celeba are shown at their
# default 64 px RGB; an image folder's real channels and classes depend on its files.
KNOWN_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "digits": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "kmnist": ((1, 28, 28), 10),
    "kmnist49": ((1, 28, 28), 49),
    "cifar10": ((3, 32, 32), 10),
    "celeba": ((3, 64, 64), 0),
    "image-folder": ((3, 64, 64), 0),
    "toy-2d": ((2,), 0),
    "synthetic": ((1, 28, 28), 10),
    "stacked-mnist": ((3, 28, 28), 1000),
    "mnist-pairs": ((1, 28, 56), 100),
}




def cheap_to_build(name: str) -> bool:
    """Whether dataset ``name`` costs nothing to build: generated or embedded (it reads no
    root) or read from one file of the user's. Its shape and labels then come from the data
    itself rather than from :data:`KNOWN_SHAPES` (a plugin's generated dataset included)."""
    declared = root_declaration(name)
    return not declared.wants or declared.file


def shape_without_loading(cfg) -> tuple[tuple[int, ...], int, bool]:
    """``(sample shape, K, multi_label)`` of a dataset without reading downloaded files.

    K is the class count, or the number of condition columns when ``multi_label`` (CelebA's 40
    attributes with ``data.labels=attributes``, condition rows of generated or ``arrays`` data).
    Image shapes follow ``data.channels`` and ``data.image_size``.
    """
    name = cfg.name
    DATASETS.get(name)  # an unknown name fails with the list of valid ones
    if cheap_to_build(name):
        data = build_dataset(cfg)
        if data.y is not None and data.y.dim() == 2:
            return tuple(data.shape), int(data.y.shape[1]), True
        return tuple(data.shape), data.n_classes, False
    shape, n_classes = KNOWN_SHAPES.get(name, ((3, 64, 64), 0))
    multi_label = getattr(cfg, "labels", None) == "attributes"  # celeba's own setting
    if multi_label:
        n_classes = 40
    if len(shape) == 3:
        shape = (cfg.channels or shape[0], cfg.image_size or shape[1], cfg.image_size or shape[2])
    return shape, n_classes, multi_label


def build_dataset(cfg) -> TensorData:
    """Build the dataset ``cfg.name`` with the generic limit / channel / size steps applied.

    Args:
        cfg: a :class:`~ganforge.config.DataConfig`.

    Returns:
        TensorData with x (N, C, H, W) uint8 (C = ``cfg.channels`` and H = W = ``cfg.image_size``
        when set) or (N, D) float32 vectors for toy data.

    Raises:
        ConfigError: unknown dataset name, or image settings given for vector data.
        DataError: a root that is not what the dataset reads (a file for a folder, or missing),
            or the dataset's files are missing or unreadable (one-line fix in the message).
    """
    builder = DATASETS.get(cfg.name)
    check_root(cfg)
    data = builder(cfg)
    if cfg.classes is not None:
        data = data.select_classes(list(cfg.classes))
    if cfg.limit is not None:
        data = data.head(cfg.limit)
    if len(data) == 0:
        raise DataError(f"dataset '{cfg.name}' ({cfg.split} split) is empty; check its files")

    steps = []
    if not data.is_image:
        for key in ("channels", "image_size"):
            if getattr(cfg, key) is not None:
                raise ConfigError(f"data.{key} does not apply to the vector dataset "
                                  f"'{cfg.name}'; remove it")
        return data
    if data.x.dtype != torch.uint8:
        raise TypeError(f"dataset '{cfg.name}' returned {data.x.dtype} images; "
                        "builders must return uint8")

    x = data.x
    if cfg.channels is not None and x.shape[1] != cfg.channels:
        x = to_channels(x, cfg.channels)
        steps.append(f"{data.x.shape[1]}->{cfg.channels} channels")
    if cfg.image_size is not None and tuple(x.shape[-2:]) != (cfg.image_size, cfg.image_size):
        steps.append(f"{x.shape[-2]}x{x.shape[-1]}->{cfg.image_size}x{cfg.image_size}")
        x = resize(x, cfg.image_size)
    if steps:
        data.x = x
        data.source += f"; {', '.join(steps)}"
    return data
