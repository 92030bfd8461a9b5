"""Choosing an extractor (load_extractor, the registry) and the Inception-v3 wiring, offline."""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
from pathlib import Path

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.metrics import inception as inc
from ganforge.metrics.base import EXTRACTORS
from ganforge.metrics.evaluator import DomainEvaluator, train_evaluator
from ganforge.metrics.extractors import available_evaluators, evaluator_dir, load_extractor
from tests.metrics.test_evaluator import MarkerPayload


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty $GANFORGE_HOME, so the user's own evaluators are never read or written."""
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def no_inception(tmp_path, monkeypatch) -> Path:
    """No Inception weights anywhere and no network: an empty torch hub, downloads that fail."""
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline():
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(inc, "download_weights", offline)
    return tmp_path / "torch"


# ------------------------------------------------------------------------------------ lookup

def test_registry_lists_both_kinds_of_extractor():
    assert {"inception", "evaluator"} <= set(EXTRACTORS.names())


def test_evaluator_found_by_name_in_the_default_folder_and_by_path(home):
    report = train_evaluator(DataConfig(name="synthetic", limit=200), epochs=1, batch_size=50,
                             threads=1, log=lambda line: None)
    assert Path(report["path"]) == evaluator_dir() / "synthetic-lenet.safetensors"
    assert evaluator_dir() == home / "evaluators"
    # The user's evaluators, then the ones that ship with the package.
    assert available_evaluators() == ["digits-lenet", "synthetic-lenet"]
    by_name = load_extractor("synthetic-lenet")
    by_path = load_extractor(report["path"])
    by_registry = EXTRACTORS.get("evaluator")(report["json"])
    for ext in (by_name, by_path, by_registry):
        assert isinstance(ext, DomainEvaluator) and ext.name == "synthetic-lenet"
        assert ext.checksum == by_name.checksum


def test_the_shipped_digits_evaluator_reads_held_out_digits_with_an_empty_home(home):
    from ganforge.data import build_dataset

    ext = load_extractor("digits-lenet")  # nothing in $GANFORGE_HOME: the package's copy
    assert isinstance(ext, DomainEvaluator) and ext.twin is not None
    assert ext.provenance()["extractor_recipe"] == 2
    test = build_dataset(DataConfig(name="digits", split="test"))  # never seen in training
    _, logits = ext.features_and_logits(test.x)
    primary = (logits.argmax(1) == test.y.cpu()).float().mean().item()
    twin = (ext.twin_logits(test.x).argmax(1) == test.y.cpu()).float().mean().item()
    # The accuracies recorded at build time (0.976 / 0.977; fp16 storage may move one digit).
    assert primary == pytest.approx(ext.meta["heldout_accuracy"], abs=0.002)
    assert twin == pytest.approx(ext.meta["twin"]["heldout_accuracy"], abs=0.002)
    assert primary > 0.97 and twin > 0.97


def test_unknown_name_says_what_was_looked_for_and_how_to_create_it(home):
    with pytest.raises(GanforgeError) as info:
        load_extractor("mnist-lenet")
    message = str(info.value)
    assert "\n" not in message
    assert str(home / "evaluators" / "mnist-lenet.json") in message
    assert "ganforge train-evaluator --dataset mnist" in message
    assert "inception" in message
    with pytest.raises(GanforgeError, match="no feature extractor"):
        load_extractor("  ")


def test_missing_or_foreign_files_given_as_paths(home, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_extractor(str(tmp_path / "nope.safetensors"))
    marker = tmp_path / "pwned"
    evil = tmp_path / "evaluator.pt"
    evil.write_bytes(pickle.dumps(MarkerPayload(marker)))
    with pytest.raises(CheckpointError, match="not an evaluator"):
        load_extractor(str(evil))
    assert not marker.exists()


# ------------------------------------------------------------------------------------ inception

def test_inception_offline_without_weights_is_one_clear_line(no_inception):
    for kwargs in ({}, {"download": False}):
        with pytest.raises(GanforgeError) as info:
            load_extractor("inception", **kwargs)
        message = str(info.value)
        assert "\n" not in message
        assert "pt_inception-2015-12-05-6726825d.pth" in message  # the file ...
        assert inc.WEIGHTS_ENV in message and str(no_inception) in message  # ... where it goes
        assert inc.URL in message  # ... and where torch-fidelity downloads it from
    assert "download failed: URLError" in str(_error(lambda: load_extractor("inception")))


def _error(fn) -> BaseException:
    with pytest.raises(GanforgeError) as info:
        fn()
    return info.value


def test_inception_weights_path_that_does_not_exist(no_inception, monkeypatch, tmp_path):
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    assert inc.WEIGHTS_ENV in str(_error(lambda: load_extractor("inception")))
    assert "given path" in str(_error(lambda: inc.InceptionV3(weights=tmp_path / "x.pth")))


def test_inception_weights_that_are_a_code_pickle_are_refused(no_inception, monkeypatch,
                                                               tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / inc.FILE_NAMES[1]
    torch.save({"fc.weight": MarkerPayload(marker)}, evil)
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(evil))
    assert "not a plain-tensor" in str(_error(lambda: load_extractor("inception")))
    assert not marker.exists()


def test_inception_prepares_uint8_rgb_for_the_network():
    seen = []

    def network(x):
        seen.append(x)
        n = x.shape[0]
        return torch.ones(n, 2048, dtype=torch.float64), torch.zeros(n, 1008)

    ext = inc.InceptionV3(network=network)
    gray = torch.linspace(-1, 1, 70 * 28 * 28).reshape(70, 1, 28, 28)
    features, logits = ext.features_and_logits(gray)
    assert features.shape == (70, 2048) and logits.shape == (70, 1008)
    assert features.dtype == torch.float32
    assert [x.shape[0] for x in seen] == [inc.BATCH, 70 - inc.BATCH]  # batched
    x = torch.cat(seen)
    assert x.dtype == torch.uint8 and x.shape == (70, 3, 28, 28)
    assert x[0, 0, 0, 0] == 0 and x[-1, 2, -1, -1] == 255  # [-1, 1] -> 0..255
    assert torch.equal(x[:, 0], x[:, 2])  # gray repeated
    prov = ext.provenance()
    assert prov["resize"] == "bilinear-tf1x" and prov["extractor_input"] == [3, 299, 299]


def random_inception_weights(path: Path, monkeypatch) -> None:
    """Save randomly initialised weights of torch-fidelity's network (stands in for the real
    file, which cannot be downloaded here) as a plain state dict."""
    tfi = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")

    class Unloaded(tfi.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the random initialisation
            return None

    with monkeypatch.context() as m:
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        net = Unloaded("probe", ["2048"])
    torch.save(net.state_dict(), path)


def test_inception_runs_torch_fidelitys_network_from_a_local_file(no_inception, monkeypatch,
                                                                   tmp_path):
    weights = tmp_path / "random-inception.pth"
    random_inception_weights(weights, monkeypatch)
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(weights))
    ext = load_extractor("inception")
    # Not the standard file, so its numbers must not carry the standard name.
    assert ext.name == "inception-custom"
    assert ext.checksum == hashlib.sha256(weights.read_bytes()).hexdigest()
    features, logits = ext.features_and_logits(torch.rand(2, 1, 28, 28) * 2 - 1)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()
    # Weights for another network are refused in one line.
    torch.save({"fc.weight": torch.zeros(3, 3)}, weights)
    assert "do not fit" in str(_error(lambda: load_extractor("inception")))


def test_inception_with_the_real_weights():
    path = inc.find_weights()
    if path is None:
        pytest.skip(f"the FID Inception weights are not on this machine ({inc.FILE_NAMES[0]} "
                    f"in the torch hub cache or ${inc.WEIGHTS_ENV}); they need a download")
    ext = load_extractor("inception", download=False)
    assert ext.name == "inception" and ext.checksum.startswith(inc.HASH_PREFIX)
    features, logits = ext.features_and_logits(torch.zeros(2, 3, 32, 32))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all()
