"""Plain helpers shared by the data tests (importable, unlike conftest: ``from tests.data.data_fakes import``)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# The MNIST test split that ships with the workspace: <repo>/../shared/data (see its README).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# 40 attribute names, like CelebA's list_attr_celeba.txt header (the first three are real).
CELEBA_ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive"] + [f"Attr_{i}" for i in range(37)]


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
