"""Reference statistics: computed once, cached atomically, verified on load; real-vs-real floor."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.errors import DataError
from ganforge.metrics import reference as R
from ganforge.metrics.formulas import TooFewSamples, feature_stats
from tests.metrics import FakeExtractor


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Cache under tmp_path: no test reads or writes ~/.cache."""
    monkeypatch.setenv(R.HOME_ENV, str(tmp_path / "home"))
    return tmp_path / "home"


DIGITS_TEST = DataConfig(name="digits", split="test")  # 1,000 embedded digits, no download


def test_cache_root_follows_ganforge_home(_home):
    assert R.cache_root() == _home / "refstats"


def test_stats_are_computed_once_then_loaded(_home):
    ext, notes = FakeExtractor(), []
    first = R.reference_stats(ext, DIGITS_TEST, n=200, seed=1, log=notes.append)
    assert ext.calls == 200 and first.n == 200 and first.labels.shape == (200,)
    json_path, tensor_path = R.cache_paths(R.stats_key(ext, DIGITS_TEST, 200, 1))
    assert json_path.parent == _home / "refstats" and tensor_path.is_file()
    meta = json.loads(json_path.read_text())
    assert meta["n_samples"] == 200 and meta["n_available"] == 1000
    assert meta["extractor_sha256"] == ext.checksum and "digits" in meta["source"]
    assert {"torch", "torchvision", "ganforge", "torchmetrics"} <= set(meta["versions"])

    second = R.reference_stats(ext, DIGITS_TEST, n=200, seed=1, log=notes.append)
    assert ext.calls == 200 and notes == []  # from the cache: no extraction
    for name in ("features", "mu", "sigma", "logits", "labels"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    mu, sigma = feature_stats(second.features)
    assert torch.allclose(mu, second.mu) and torch.allclose(sigma, second.sigma)


def test_stats_are_a_seeded_random_subset():
    ext = FakeExtractor()
    a = R.compute_stats(ext, DIGITS_TEST, n=100, seed=0)
    b = R.compute_stats(ext, DIGITS_TEST, n=100, seed=0)
    c = R.compute_stats(ext, DIGITS_TEST, n=100, seed=1)
    assert torch.equal(a.features, b.features) and not torch.equal(a.features, c.features)
    # The digits split is ordered round-robin by class; a random subset is not.
    assert not torch.equal(a.labels[:10], torch.arange(10))


def test_all_samples_when_n_exceeds_the_split():
    stats = R.compute_stats(FakeExtractor(), DIGITS_TEST, n=5000)
    assert stats.n == 1000 and stats.meta["n_samples"] == 1000


def test_another_extractor_or_split_gets_another_entry():
    key = R.stats_key(FakeExtractor(), DIGITS_TEST, 200, 0)
    others = [R.stats_key(FakeExtractor(feature_dim=4), DIGITS_TEST, 200, 0),
              R.stats_key(FakeExtractor(), DataConfig(name="digits", split="train"), 200, 0),
              R.stats_key(FakeExtractor(), DIGITS_TEST, 300, 0),
              R.stats_key(FakeExtractor(), DIGITS_TEST, 200, 1)]
    paths = {R.cache_paths(k)[0] for k in [key, *others]}
    assert len(paths) == 5


def test_tampered_tensors_are_detected_and_recomputed():
    ext, notes = FakeExtractor(), []
    R.reference_stats(ext, DIGITS_TEST, n=100, log=notes.append)
    key = R.stats_key(ext, DIGITS_TEST, 100, 0)
    json_path, tensor_path = R.cache_paths(key)
    data = bytearray(tensor_path.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last tensor
    tensor_path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="SHA-256"):
        R.load_stats(json_path, key)

    R.reference_stats(ext, DIGITS_TEST, n=100, log=notes.append)
    assert ext.calls == 200 and len(notes) == 1 and "recomputing" in notes[0]
    assert R.load_stats(json_path, key).n == 100  # the entry was rewritten and verifies again


def test_an_entry_for_another_key_is_refused():
    ext = FakeExtractor()
    R.reference_stats(ext, DIGITS_TEST, n=50, log=lambda m: None)
    json_path, _ = R.cache_paths(R.stats_key(ext, DIGITS_TEST, 50, 0))
    with pytest.raises(DataError, match="another extractor"):
        R.load_stats(json_path, R.stats_key(FakeExtractor(feature_dim=4), DIGITS_TEST, 50, 0))


def test_unwritable_cache_still_returns_the_stats(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    notes = []
    stats = R.reference_stats(FakeExtractor(), DIGITS_TEST, n=30, cache_dir=blocker / "sub",
                              log=notes.append)
    assert stats.n == 30 and "could not cache" in notes[0]


def test_real_vs_real_floor():
    features = torch.randn(1000, 4, generator=torch.Generator().manual_seed(0))
    floor = R.fid_floor(features, (100, 500))
    assert set(floor) == {100, 500} and 0 < floor[500] < floor[100]  # bias shrinks with n
    with pytest.raises(TooFewSamples):
        R.fid_floor(features, (501,))

    notes = []
    floor = R.real_floor(FakeExtractor(), DIGITS_TEST, counts=(100, 400, 600), log=notes.append)
    assert set(floor) == {100, 400} and "skips" in notes[0]
    with pytest.raises(TooFewSamples):
        R.real_floor(FakeExtractor(), DIGITS_TEST, counts=(600,), log=notes.append)


def test_count_tags():
    assert [R.count_tag(n) for n in (10_000, 50_000, 1000, 1500, 500)] == \
        ["10k", "50k", "1k", "1500", "500"]
