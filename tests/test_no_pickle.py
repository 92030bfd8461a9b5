"""No code runs from files: a crafted pickle whose payload would create a marker file is given
to every loader as a checkpoint, evaluator, Inception weights, samples or a dataset batch; each
refuses it with a one-line error and the marker never appears.

The payload is first shown to work (plain ``pickle.loads`` / ``torch.load(weights_only=False)``
do create the marker), so the tests would notice a loader that unpickled it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.config import resolve
from ganforge.errors import GanforgeError

SRC = Path(__file__).resolve().parents[1] / "src" / "ganforge"


class Payload:
    """Unpickling this touches ``marker``: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PAYLOAD_RAN"


@pytest.fixture
def evil(tmp_path, marker) -> dict[str, Path]:
    """The same payload as a raw pickle and in torch.save's zip format, under several names."""
    files = {}
    blob = pickle.dumps({"G/weight": Payload(marker)})
    for name in ("model.pt", "weights.pth", "last.ckpt", "tensors.safetensors", "fake.json"):
        (tmp_path / name).write_bytes(blob)
        files[name] = tmp_path / name
    torch.save({"weight": Payload(marker)}, tmp_path / "zipped.pth")
    files["zipped.pth"] = tmp_path / "zipped.pth"
    return files


def test_the_payload_really_runs_when_unpickled(evil, marker):
    pickle.loads(evil["model.pt"].read_bytes())
    assert marker.exists()
    marker.unlink()
    torch.load(evil["zipped.pth"], weights_only=False)
    assert marker.exists()


def refused(capsys, argv: list[str], message: str, marker: Path) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and err.startswith("ganforge: error: "), err
    assert message in err and "Traceback" not in out + err, err
    assert not marker.exists(), "the pickle payload ran"


@pytest.mark.parametrize("name", ["model.pt", "weights.pth", "last.ckpt", "zipped.pth",
                                  "tensors.safetensors", "fake.json"])
def test_generate_refuses_a_pickle_checkpoint(name, evil, marker, capsys, tmp_path):
    # A .safetensors path is read through its JSON record, which this one lacks.
    message = {"fake.json": "is not valid JSON", "tensors.safetensors": "tensors.json' not found"
               }.get(name, "pickled .pt/.pth/.ckpt files are never loaded")
    refused(capsys, ["generate", str(tmp_path), "--checkpoint", str(evil[name]), "--out",
                     str(tmp_path / "g.png")], message, marker)


def _run_with_pickled_tensors(run: Path, blob: bytes) -> None:
    """A run folder whose only checkpoint's tensors file is ``blob``, with a matching checksum
    (so only the refusal to unpickle stands between the file and the payload)."""
    cfg = resolve("gan-mnist", overrides=["data.name=synthetic", "data.image_size=8",
                                          "data.channels=1", "data.limit=16", "train.steps=3",
                                          "train.batch_size=8",
                                          "train.device=cpu", "log.progress=false"])
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(cfg.to_json())
    (run / "checkpoints" / "step_000000001.safetensors").write_bytes(blob)
    (run / "checkpoints" / "step_000000001.json").write_text(json.dumps({
        "format_version": 1, "step": 1, "sha256": hashlib.sha256(blob).hexdigest(),
        "tensors_file": "step_000000001.safetensors", "modules": ["D", "G"],
        "optimizers": {}, "rng": {}, "model": {"arch": "mlp"}}))


@pytest.mark.parametrize("name", ["model.pt", "zipped.pth"])
def test_generate_refuses_pickled_tensors_inside_a_run(name, evil, marker, capsys, tmp_path):
    run = tmp_path / "run"
    _run_with_pickled_tensors(run, evil[name].read_bytes())
    refused(capsys, ["generate", str(run), "--out", str(tmp_path / "g.png")],
            "is not a safetensors file", marker)


@pytest.mark.parametrize("name", ["model.pt", "zipped.pth"])
def test_resume_refuses_pickled_tensors(name, evil, marker, capsys, tmp_path):
    run = tmp_path / "run"
    _run_with_pickled_tensors(run, evil[name].read_bytes())
    refused(capsys, ["train", "--resume", str(run)], "no usable checkpoint in", marker)


def test_resume_refuses_a_pickle_file(evil, marker, capsys):
    refused(capsys, ["train", "--resume", str(evil["model.pt"])], "is a file, not a run folder",
            marker)


@pytest.mark.parametrize("name", ["model.pt", "zipped.pth", "tensors.safetensors"])
def test_evaluator_loader_refuses_a_pickle(name, evil, marker):
    from ganforge.metrics.extractors import load_extractor

    with pytest.raises(GanforgeError) as info:
        load_extractor(str(evil[name]))
    assert "\n" not in str(info.value) and not marker.exists()


def test_evaluator_with_pickled_weights_and_a_matching_checksum(evil, marker, tmp_path):
    from ganforge.metrics.extractors import KIND, read_evaluator

    blob = evil["zipped.pth"].read_bytes()
    (tmp_path / "ev.safetensors").write_bytes(blob)
    (tmp_path / "ev.json").write_text(json.dumps({
        "format_version": 1, "kind": KIND, "tensors_file": "ev.safetensors",
        "sha256": hashlib.sha256(blob).hexdigest()}))
    with pytest.raises(GanforgeError, match="is not a safetensors file"):
        read_evaluator(tmp_path / "ev.safetensors")
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the raw one
@pytest.mark.parametrize("name", ["weights.pth", "zipped.pth"])
def test_inception_weights_loader_refuses_a_pickle(name, evil, marker, monkeypatch):
    from ganforge.metrics import inception
    from ganforge.metrics.extractors import load_extractor

    with pytest.raises(GanforgeError, match="is not a plain-tensor Inception weights file"):
        inception.load_weights(evil[name])
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(evil[name]))
    with pytest.raises(GanforgeError) as info:  # the way `--evaluator inception` finds them
        load_extractor("inception")
    assert "\n" not in str(info.value) and not marker.exists()


def test_samples_npz_with_pickled_objects(marker, capsys, tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, images=np.array([Payload(marker)], dtype=object))
    refused(capsys, ["evaluate", str(path), "--metrics", "fid", "--dataset", "mnist"],
            "cannot read samples", marker)


def test_cifar_batch_with_a_payload(marker, capsys, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps(
        {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "x": Payload(marker)}))
    refused(capsys, ["train", "--preset", "dcgan-cifar10", "--data-root", str(tmp_path),
                     "--out", str(tmp_path / "run"), "--set", "data.split=test",
                     "--set", "data.download=false", "--steps", "1"],
            "is not a CIFAR-10 python batch (UnpicklingError)", marker)
    assert not (tmp_path / "run").exists()


def test_source_never_unpickles_unsafely():
    """Every loader in the package: torch.load only with weights_only=True, np.load only with
    allow_pickle=False, and no plain pickle.load/loads (the CIFAR reader's allow-list aside)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"\btorch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                offenders.append(f"{path.name}: {match.group(0)}")
        for match in re.finditer(r"\bnp\.load\(([^)]*)\)", text):
            if "allow_pickle=False" not in match.group(1):
                offenders.append(f"{path.name}: {match.group(0)}")
        offenders += [f"{path.name}: {m.group(0)}" for m in
                      re.finditer(r"\b(pickle\.loads?|cPickle|dill|joblib\.load)\b", text)]
    assert offenders == []
