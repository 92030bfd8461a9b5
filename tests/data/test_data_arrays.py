"""The ``arrays`` dataset (npz and .npy folder layouts), its normalisation and every refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.vectors import (check_condition_use, destandardize, fit_standardize,
                                   label_kind, standardize)
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def write_npz(tmp_path: Path, name: str = "mine.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def load(data_cfg, root: Path, **kw):
    return build_dataset(data_cfg(name="arrays", root=str(root), **kw))


# ------------------------------------------------------------------------------ layouts

def test_npz_images_with_classes(tmp_path, data_cfg):
    x = RNG.integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    y = np.arange(12) % 4
    names = np.array(["a", "b", "c", "d"])
    data = load(data_cfg, write_npz(tmp_path, x=x, y=y, class_names=names))
    assert data.x.shape == (12, 1, 8, 8) and data.x.dtype == torch.uint8
    assert torch.equal(data.x[:, 0], torch.from_numpy(x))
    assert data.y.dtype == torch.int64 and data.y.tolist() == y.tolist()
    assert data.n_classes == 4 and data.class_names == ["a", "b", "c", "d"]
    assert data.is_image and data.extra["label_kind"] == "classes"
    assert data.extra["scaling"] == {"x": None, "y": None}
    assert data.extra["image_source"] == "uint8"


def test_npy_folder_layout_and_test_split(tmp_path, data_cfg):
    folder = tmp_path / "arrays"
    folder.mkdir()
    x = RNG.normal(5.0, 3.0, size=(40, 3)).astype(np.float32)
    x_test = RNG.normal(5.0, 3.0, size=(10, 3)).astype(np.float32)
    np.save(folder / "x.npy", x)
    np.save(folder / "x_test.npy", x_test)
    train = load(data_cfg, folder)
    test = load(data_cfg, folder, split="test")
    assert train.x.shape == (40, 3) and test.x.shape == (10, 3) and not train.is_image
    assert train.y is None and train.n_classes == 0 and train.extra["label_kind"] is None
    # Both splits use the training statistics, so the test split maps back exactly.
    record = train.extra["scaling"]["x"]
    assert test.extra["scaling"]["x"] == record
    assert torch.allclose(destandardize(test.x, record), torch.from_numpy(x_test), atol=1e-5)


def test_vectors_are_standardised_per_feature(tmp_path, data_cfg):
    x = np.stack([RNG.normal(100.0, 20.0, 500), RNG.normal(-3.0, 0.01, 500),
                  np.full(500, 7.0)], axis=1)
    data = load(data_cfg, write_npz(tmp_path, x=x))
    assert data.x.dtype == torch.float32
    assert torch.allclose(data.x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(data.x.std(0, unbiased=False), torch.tensor([1.0, 1.0, 0.0]),
                          atol=1e-4)  # the constant feature is only centred
    record = data.extra["scaling"]["x"]
    assert record["kind"] == "standardize"
    assert record["mean"] == pytest.approx(x.mean(0).tolist(), rel=1e-12)
    assert record["std"] == pytest.approx([x[:, 0].std(), x[:, 1].std(), 1.0], rel=1e-12)
    assert torch.allclose(destandardize(data.x, record).double(), torch.from_numpy(x),
                          atol=1e-5 * 100)


def test_continuous_conditions_are_standardised_binary_kept(tmp_path, data_cfg):
    x = RNG.integers(0, 256, size=(50, 3, 8, 8), dtype=np.uint8)
    y = np.stack([RNG.normal(10.0, 4.0, 50), (np.arange(50) % 2).astype(float)], axis=1)
    data = load(data_cfg, write_npz(tmp_path, x=x, y=y, class_names=np.array(["temp", "on"])))
    assert data.y.shape == (50, 2) and data.y.dtype == torch.float32
    assert data.n_classes == 0 and data.class_names == ["temp", "on"]
    assert data.extra["label_kind"] == "continuous"
    record = data.extra["scaling"]["y"]
    assert record["mean"][1] == 0.0 and record["std"][1] == 1.0  # the 0/1 column as it is
    assert torch.equal(data.y[:, 1], torch.from_numpy(y[:, 1]).float())
    assert abs(float(data.y[:, 0].mean())) < 1e-5
    assert float(data.y[:, 0].std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(destandardize(data.y, record).double(), torch.from_numpy(y), atol=1e-4)


def test_binary_condition_matrix_is_not_rescaled(tmp_path, data_cfg):
    x = RNG.normal(size=(20, 4)).astype(np.float32)
    y = RNG.integers(0, 2, size=(20, 5)).astype(bool)
    data = load(data_cfg, write_npz(tmp_path, x=x, y=y))
    assert data.extra["scaling"]["y"] is None and data.extra["label_kind"] == "binary"
    assert torch.equal(data.y, torch.from_numpy(y).float())


@pytest.mark.parametrize("values,source,expected", [
    (np.array([0.0, 0.5, 1.0]), "float [0, 1]", [0, 128, 255]),
    (np.array([-1.0, 0.0, 1.0]), "float [-1, 1]", [0, 128, 255]),
    (np.array([0, 7, 255], dtype=np.int64), "int 0..255", [0, 7, 255]),
])
def test_image_ranges(tmp_path, data_cfg, values, source, expected):
    x = np.broadcast_to(values.reshape(3, 1, 1, 1), (3, 3, 4, 4)).copy()
    data = load(data_cfg, write_npz(tmp_path, x=x))
    assert data.extra["image_source"] == source
    assert data.x[:, 0, 0, 0].tolist() == expected and data.x.shape == (3, 3, 4, 4)


def test_limit_keeps_scaling_record(tmp_path, data_cfg):
    x = RNG.normal(size=(30, 2))
    data = load(data_cfg, write_npz(tmp_path, x=x, y=RNG.normal(size=(30, 1))), limit=10)
    assert len(data) == 10 and data.y.shape == (10, 1)
    assert data.extra["scaling"]["x"]["mean"] == pytest.approx(x.mean(0).tolist())


# ------------------------------------------------------------------------------ refusals

def _images(n: int = 6) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, 8, 8), dtype=np.uint8)


BAD = {
    "object array": (dict(x=np.array([[1.0], "a"], dtype=object)), "object (pickled)"),
    "1-d x": (dict(x=np.arange(5.0)), "(N, H, W)"),
    "5-d x": (dict(x=np.zeros((2, 1, 1, 4, 4))), "(N, H, W)"),
    "empty x": (dict(x=np.zeros((0, 3))), "empty"),
    "string x": (dict(x=np.array([["a"]])), "dtype"),
    "nan in x": (dict(x=np.array([[0.0, np.nan], [1.0, 2.0]])), "NaN/inf"),
    "inf in y": (dict(x=np.zeros((2, 2)), y=np.array([[1.0], [np.inf]])), "NaN/inf"),
    "length mismatch": (dict(x=_images(6), y=np.arange(5)), "5 rows for 6 samples"),
    "negative class": (dict(x=_images(3), y=np.array([0, -1, 2])), "negative class -1"),
    "float classes": (dict(x=_images(3), y=np.array([0.0, 1.5, 2.0])), "must be integers"),
    "huge class id": (dict(x=_images(2), y=np.array([0, 10**9])), "np.unique"),
    "3-d y": (dict(x=_images(2), y=np.zeros((2, 1, 1))), "condition rows (N, K)"),
    "channels last": (dict(x=np.zeros((2, 8, 8, 3), dtype=np.uint8)), "transpose(0, 3, 1, 2)"),
    "2 channels": (dict(x=np.zeros((2, 2, 8, 8), dtype=np.uint8)), "C = 1 or 3"),
    "float 0..255": (dict(x=np.full((2, 8, 8), 200.0)), "[0, 1] or [-1, 1]"),
    "int out of 0..255": (dict(x=np.full((2, 8, 8), 300)), "0..255"),
    "bool images": (dict(x=np.zeros((2, 8, 8), dtype=bool)), "bool images"),
    "unknown name": (dict(x=_images(2), labels=np.arange(2)), "unknown arrays 'labels'"),
    "class_names count": (dict(x=_images(4), y=np.arange(4), class_names=np.array(["a"])),
                          "1 class_names"),
    "class_names numbers": (dict(x=_images(2), y=np.arange(2), class_names=np.arange(2)),
                            "string array"),
    "class_names without y": (dict(x=_images(2), class_names=np.array(["a"])), "but no y"),
    "test without y_test": (dict(x=_images(2), y=np.arange(2), x_test=_images(2)),
                            "'y_test' is missing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line(tmp_path, data_cfg, case):
    arrays, expected = BAD[case]
    split = "test" if "x_test" in arrays else "train"
    with pytest.raises(DataError) as err:
        load(data_cfg, write_npz(tmp_path, **arrays), split=split)
    message = str(err.value)
    assert expected in message and "\n" not in message, message


@pytest.mark.parametrize("root,expected", [
    (None, "needs data.root"),
    ("missing.npz", "does not exist"),
    ("notes.txt", "not an .npz"),
    ("folder", "no x.npy"),
    ("broken.npz", "not a readable .npz"),
])
def test_bad_location_is_one_line(tmp_path, data_cfg, root, expected):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    cfg = data_cfg(name="arrays", root=None if root is None else str(tmp_path / root))
    with pytest.raises(DataError) as err:
        build_dataset(cfg)
    assert expected in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("files,expected", [
    ({"y.npy": np.array([1, "a"], dtype=object)}, "'y' is an object (pickled) array"),
    ({"labels.npy": np.arange(3)}, "unknown arrays 'labels'"),
])
def test_bad_npy_folder_is_one_line(tmp_path, data_cfg, files, expected):
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "x.npy", _images(3))
    for name, value in files.items():
        np.save(folder / name, value, allow_pickle=True)
    with pytest.raises(DataError) as err:
        load(data_cfg, folder)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_test_split_must_match(tmp_path, data_cfg):
    path = write_npz(tmp_path, x=RNG.normal(size=(4, 3)), x_test=RNG.normal(size=(4, 2)))
    with pytest.raises(DataError, match="one sample shape"):
        load(data_cfg, path, split="test")
    path = write_npz(tmp_path, "b.npz", x=_images(3), y=np.array([0, 1, 1]),
                     x_test=_images(2), y_test=np.array([0, 2]))
    with pytest.raises(DataError, match="class 2 but y only 0..1"):
        load(data_cfg, path, split="test")
    with pytest.raises(DataError, match="no 'x_test'"):
        load(data_cfg, write_npz(tmp_path, "c.npz", x=_images(2)), split="test")


def test_vectors_refuse_image_settings(tmp_path, data_cfg):
    with pytest.raises(ConfigError, match="data.image_size"):
        load(data_cfg, write_npz(tmp_path, x=RNG.normal(size=(4, 3))), image_size=28)


# ------------------------------------------------------------------------------ records

def test_standardize_round_trip_and_identity():
    x = torch.from_numpy(RNG.normal(3.0, 50.0, size=(200, 6)))
    record = fit_standardize(x)
    z = standardize(x, record)
    assert z.dtype == torch.float32
    assert torch.allclose(z.mean(0), torch.zeros(6), atol=1e-5)
    back = destandardize(z, record)
    assert torch.allclose(back.double(), x, rtol=1e-6, atol=1e-5 * x.abs().max())
    small = torch.from_numpy(RNG.normal(size=(50, 2)))
    small_record = fit_standardize(small)
    assert (destandardize(standardize(small, small_record), small_record).double()
            - small).abs().max() < 1e-5
    assert torch.equal(destandardize(z, None), z) and torch.equal(standardize(z, None), z)


def test_standardize_refuses_bad_records():
    record = fit_standardize(np.ones((3, 2)))
    with pytest.raises(DataError, match=r"pass \(N, 2\) rows"):
        standardize(torch.zeros(4, 3), record)
    with pytest.raises(DataError, match="unknown scaling record kind 'minmax'"):
        destandardize(torch.zeros(4, 2), {"kind": "minmax"})


def test_label_kinds_and_class_head_check():
    assert label_kind(None) is None
    assert label_kind(torch.tensor([0, 2])) == "classes"
    assert label_kind(torch.tensor([[0.0, 1.0]])) == "binary"
    assert label_kind(torch.tensor([[0.5, 1.0]])) == "continuous"

    class Data:
        name, y = "arrays", torch.tensor([[0.3, -1.2]])

    check_condition_use(Data, ModelConfig(conditional=True, d_label="projection"))
    check_condition_use(Data, ModelConfig(conditional=False, d_label="classifier"))
    with pytest.raises(ConfigError) as err:
        check_condition_use(Data, ModelConfig(conditional=True, d_label="classifier"))
    assert "continuous" in str(err.value) and "\n" not in str(err.value)
    Data.y = torch.tensor([[0.0, 1.0]])  # 0/1 attributes: ACGAN's BCE class head is fine
    check_condition_use(Data, ModelConfig(conditional=True, d_label="classifier"))
