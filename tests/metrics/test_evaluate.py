"""``evaluate`` and ``ganforge evaluate`` end to end, on npz files and tiny runs."""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pytest
import torch

from ganforge import api
from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics import context
from ganforge.metrics import evaluate as E
from ganforge.metrics.formulas import TooFewSamples
from tests.conftest import fast_overrides
from tests.metrics import FakeExtractor, painted

VERSIONED = {"torch", "torchvision", "ganforge", "torchmetrics"}
USER_HOME = os.environ.get("GANFORGE_HOME")  # read before the fixtures point it into tmp_path


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))


@pytest.fixture
def fake_loader(monkeypatch):
    """Make every evaluator spec load one shared FakeExtractor; returns (extractor, specs)."""
    ext, specs = FakeExtractor(), []

    def load(spec, device="cpu"):
        specs.append(spec)
        return ext

    monkeypatch.setattr(context, "load_extractor", load)
    return ext, specs


def save_npz(path, images: torch.Tensor, labels=None):
    arrays = {"images": images[:, 0].numpy() if images.shape[1] == 1 else images.numpy()}
    if labels is not None:
        arrays["labels"] = np.asarray(labels, dtype=np.int64)
    np.savez_compressed(path, **arrays)
    return path


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ganforge")
    E.add_evaluate_parser(parser.add_subparsers(dest="command"))
    return E.cmd_evaluate(parser.parse_args(["evaluate", *argv]))


def labelled_npz(tmp_path, n=300, wrong_every=10, wrong=3):
    """Samples meant as class i % 10; ``wrong`` of every ``wrong_every`` are painted as the next
    class, so the fake evaluator gets exactly 1 - wrong / wrong_every right."""
    labels = torch.arange(n) % 10
    painted_as = torch.where(torch.arange(n) // 10 % wrong_every < wrong, (labels + 1) % 10, labels)
    return save_npz(tmp_path / "samples.npz", painted(painted_as), labels), labels, painted_as


def test_cli_on_an_npz_writes_results_with_provenance(tmp_path, fake_loader, capsys):
    ext, specs = fake_loader
    path, labels, painted_as = labelled_npz(tmp_path)
    assert run_cli([str(path), "--metrics", "fid,kid,is,pr,dc,label-acc,fid-per-class",
                    "--dataset", "digits", "--split", "test", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "fid300_fake-lenet" in out and "acc300_fake-lenet" in out
    assert specs == ["digits-lenet"]  # the reference dataset's own evaluator

    written = json.loads((tmp_path / "samples-metrics.json").read_text())
    results = {r["name"]: r for r in written["results"]}
    assert set(results) == {f"{p}300_fake-lenet" for p in
                            ("fid", "kid", "is", "pr", "dc", "acc", "fidpc")}
    acc = results["acc300_fake-lenet"]
    assert acc["value"] == pytest.approx(0.7)
    expected = torch.zeros(10, 10, dtype=torch.long)
    for t, p in zip(labels, painted_as):
        expected[t, p] += 1
    assert acc["details"]["confusion"] == expected.tolist()
    for r in results.values():
        p = r["protocol"]
        assert p["extractor"] == "fake-lenet" and p["extractor_sha256"] == ext.checksum
        assert p["n_fake"] == 300 and p["resize"] == "none" and VERSIONED <= set(p["versions"])
        assert p["reference"]["dataset"] == "digits" and p["reference"]["split"] == "test"
    assert results["fid300_fake-lenet"]["protocol"]["n_real"] == 300
    assert "std" in results["kid300_fake-lenet"]["details"]
    assert set(results["pr300_fake-lenet"]["details"]) >= {"precision", "recall"}

    # A second call adds its metric and keeps the others.
    assert run_cli([str(path), "--metrics", "fid", "--dataset", "digits", "--n-real", "1000"]) == 0
    names = [r["name"] for r in json.loads((tmp_path / "samples-metrics.json").read_text())
             ["results"]]
    assert len(names) == 7 and "fid300_fake-lenet" in names


def test_label_accuracy_of_real_images_equals_the_evaluators_accuracy(tmp_path):
    real = build_dataset(DataConfig(name="digits", split="test"))
    ext = FakeExtractor()
    logits = ext.features_and_logits(real.x.float() / 127.5 - 1)[1]
    direct = (logits.argmax(1) == real.y).double().mean().item()
    path = save_npz(tmp_path / "real.npz", real.x, real.y)
    (result,) = E.evaluate(path, ["label-acc"], extractor=ext, n_fake=None)
    assert result.value == pytest.approx(direct) and result.protocol["n_fake"] == 1000


def test_fid_of_the_reference_split_against_itself_is_zero(tmp_path):
    real = build_dataset(DataConfig(name="digits", split="test"))
    path = save_npz(tmp_path / "real.npz", real.x, real.y)
    (fid,) = E.evaluate(path, ["fid"], FakeExtractor(), {"name": "digits", "split": "test"},
                        n_fake=None, n_real=1000)
    assert fid.name == "fid1k_fake-lenet" and fid.value == pytest.approx(0.0, abs=1e-4)


def test_few_samples_are_flagged_estimates_or_one_line_errors(tmp_path):
    path = save_npz(tmp_path / "few.npz", painted(torch.arange(6)), torch.arange(6))
    ref = {"name": "digits", "split": "test"}
    fid, kid, is_ = E.evaluate(path, ["fid", "kid", "is"], FakeExtractor(), ref, n_fake=None)
    assert "rank-deficient" in fid.details["estimate"]  # 6 samples, 8 feature dims
    assert kid.details["subset_size"] == 6 and "estimate" in kid.details
    assert is_.details["splits"] == 6 and "estimate" in is_.details
    with pytest.raises(TooFewSamples) as info:
        E.evaluate(path, ["pr"], FakeExtractor(), ref, n_fake=3)
    assert "k=3" in str(info.value) and "\n" not in str(info.value)


def test_bad_requests_fail_early_with_the_fix(tmp_path):
    path = save_npz(tmp_path / "s.npz", painted(torch.arange(4)))
    with pytest.raises(ConfigError, match="valid metrics: .*fid"):
        E.evaluate(path, ["fid", "fidd"], FakeExtractor())
    with pytest.raises(ConfigError, match="conditional"):
        E.evaluate(path, ["label-acc"], FakeExtractor())
    with pytest.raises(ConfigError, match="--dataset"):
        E.evaluate(path, ["fid"], FakeExtractor())
    with pytest.raises(GanforgeError, match="missing. does not exist; pass a run folder"):
        E.evaluate(tmp_path / "missing", ["fid"], FakeExtractor())
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(GanforgeError, match="cannot read"):
        E.evaluate(tmp_path / "bad.npz", ["fid"], FakeExtractor())


def test_a_conditional_run_is_scored_against_its_own_dataset(tmp_path, fake_loader, capsys):
    _, specs = fake_loader
    run_dir = tmp_path / "run"
    api.train("cgan-digits", overrides=fast_overrides(), out=str(run_dir), log=lambda m: None)
    assert run_cli([str(run_dir), "--metrics", "fid,label-acc", "--n", "200",
                    "--device", "cpu"]) == 0
    assert specs == ["digits-lenet"]  # the run's dataset's evaluator
    results = json.loads((run_dir / "metrics.json").read_text())["results"]
    fid, acc = results
    assert fid["name"] == "fid200_fake-lenet" and fid["protocol"]["reference"]["dataset"] == \
        "digits" and fid["protocol"]["reference"]["split"] == "test"
    confusion = torch.tensor(acc["details"]["confusion"])
    assert confusion.sum(dim=1).tolist() == [20] * 10  # labels uniform over the classes


def test_a_toy_run_reports_mode_coverage(tmp_path):
    run_dir = tmp_path / "toy"
    api.train("gan-toy2d", overrides=fast_overrides() + ["data.toy_samples=512"],
              out=str(run_dir), log=lambda m: None)
    (result,) = E.evaluate(run_dir, ["toy-2d"], n_fake=500)
    assert result.name == "modes500_8gaussians" and 0 <= result.value <= 8
    assert result.protocol["reference"]["dataset"] == "toy-2d"


@pytest.mark.slow
def test_fid_and_label_accuracy_of_10k_mnist_under_30_s(tmp_path, mnist_root, monkeypatch):
    extractors = pytest.importorskip("ganforge.metrics.extractors")
    # The evaluator from the user's own folder; the statistics cache stays in tmp_path.
    with monkeypatch.context() as m:
        if USER_HOME:
            m.setenv("GANFORGE_HOME", USER_HOME)
        else:
            m.delenv("GANFORGE_HOME")
        try:
            ext = extractors.load_extractor("mnist-lenet")
        except GanforgeError as err:
            pytest.skip(f"the MNIST evaluator is not available ({err})")
    real = build_dataset(DataConfig(name="mnist", root=str(mnist_root), split="test",
                                    download=False))
    path = save_npz(tmp_path / "mnist.npz", real.x, real.y)
    ref = {"name": "mnist", "root": str(mnist_root), "split": "test", "download": False}
    start = time.perf_counter()
    fid, acc = E.evaluate(path, ["fid", "label-acc"], ext, ref, n_fake=None)
    assert time.perf_counter() - start < 30
    assert fid.value == pytest.approx(0.0, abs=1e-3) and acc.value > 0.95


def test_toy_points_npz_with_the_toy_flag(tmp_path, capsys):
    from ganforge.metrics.coverage import toy_modes

    centres, _ = toy_modes("25gaussians")
    path = tmp_path / "toy.npz"
    np.savez(path, points=centres[:10].repeat(3, 1).numpy())
    assert run_cli([str(path), "--metrics", "toy-2d", "--toy", "25gaussians"]) == 0
    assert "modes30_25gaussians" in capsys.readouterr().out
    (result,) = json.loads((tmp_path / "toy-metrics.json").read_text())["results"]
    assert result["value"] == 10.0 and result["protocol"]["reference"]["toy"] == "25gaussians"


def test_label_accuracy_of_real_held_out_images_equals_the_evaluators_accuracy(tmp_path):
    """Score the evaluator's own held-out images (the synthetic test split) as 'samples'."""
    from ganforge.metrics.evaluator import train_evaluator

    cfg = DataConfig(name="synthetic", limit=600)
    report = train_evaluator(cfg, epochs=1, batch_size=50, seed=0, threads=1,
                             out_path=str(tmp_path / "ev.safetensors"), log=lambda m: None)
    held = build_dataset(DataConfig(name="synthetic", split="test", limit=600))
    assert len(held) == report["heldout_size"]
    npz = save_npz(tmp_path / "real.npz", held.x, held.y.tolist())
    (result,) = E.evaluate(npz, ["label-acc"], extractor=report["path"], n_fake=None,
                           log=lambda m: None)
    assert result.value == pytest.approx(report["heldout_accuracy"], abs=1e-12)
