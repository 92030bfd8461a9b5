"""``ganforge export``: ONNX run in onnxruntime and TorchScript run in a Python process where
ganforge cannot be imported both give what ``Run.generate`` gives (1e-4); a hub folder loads
back exactly; every refusal is one line and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import api
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.run import checkpoint as ckpt
from ganforge.run import export as export_module
from ganforge.run.export import export
from ganforge.run.hub import HUB_CARD, HUB_CONFIG, HUB_SAMPLES, HUB_WEIGHTS
from tests.conftest import fast_overrides
from tests.training.step.test_loop import preset_on_generated_data

TOL = 1e-4
# An unconditional MLP, a class-conditional MLP, a DCGAN with an EMA copy of G, and an MLP on
# standardised vectors conditioned on standardised continuous rows (arrays data).
KINDS = ("gan-mnist", "cgan-digits", "dcgan-mnist", "vectors")
# The kinds whose preset keeps an EMA of G (the export must take that copy).
WITH_EMA = ("gan-mnist", "cgan-digits", "dcgan-mnist")


def onnx_ready() -> None:
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason=f"{module} is not installed "
                            "(pip install 'ganforge[export]')")


def vectors_npz(folder: Path) -> Path:
    """Vectors and condition rows far from zero mean and unit std, so scaling shows."""
    rng = np.random.default_rng(0)
    y = rng.normal([7.0, -3.0], [2.0, 0.5], size=(128, 2))
    x = np.concatenate([y * [4.0, 1.0] + [100.0, 0.0], rng.normal(-50.0, 5.0, (128, 1))], 1)
    path = folder / "vectors.npz"
    np.savez(path, x=x.astype(np.float32), y=y.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    out = {}
    for kind in KINDS:
        if kind == "vectors":
            preset = "cgan-ring-angle"
            overrides = fast_overrides(2) + ["data.name=arrays",
                                             f'data.root="{vectors_npz(root)}"']
        else:
            preset, overrides = kind, preset_on_generated_data(kind)
        if kind == "dcgan-mnist":  # the EMA starts at once, so it differs from G after 2 steps
            overrides.append("train.ema_start=0")
        api.train(preset, overrides=overrides, out=str(root / kind), log=lambda m: None)
        out[kind] = root / kind
    return out


def inputs(run, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latents ``Run.generate(seed=seed)`` draws, and labels as the graph takes them."""
    z = run.noise.z(n, torch.Generator().manual_seed(seed), device="cpu")
    if run.multi_label:  # rows in the data's units
        return z, torch.stack([torch.linspace(3, 11, n), torch.linspace(-4, -2, n)], 1)
    return z, (torch.arange(n) % run.n_classes if run.n_classes else None)


def expected(run, n: int, seed: int, labels) -> torch.Tensor:
    return run.generate(n=n if labels is None else None, labels=labels, seed=seed)


# ------------------------------------------------------------------------------------ ONNX

@pytest.mark.parametrize("kind", KINDS)
def test_onnx_in_onnxruntime_matches_run_generate(kind, runs, tmp_path):
    onnx_ready()
    import onnx
    import onnxruntime

    path = export(runs[kind], "onnx", tmp_path / "g.onnx")
    run = api.load_run(runs[kind])
    assert run.uses_ema == (kind in WITH_EMA)
    if run.uses_ema:  # so matching Run.generate means the EMA copy was exported, not G
        tensors, _ = ckpt.load_checkpoint(run.checkpoint)
        g, ema = ckpt.module_state(tensors, "G"), ckpt.module_state(tensors, "G_ema")
        assert any(not torch.equal(g[k], ema[k]) for k in g if g[k].is_floating_point())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["z", "labels"] if run.n_classes else ["z"])
    assert [o.name for o in session.get_outputs()] == ["images"]
    for n, seed in ((1, 3), (7, 4)):  # the batch dimension is dynamic
        z, labels = inputs(run, n, seed)
        feed = {"z": z.numpy()} | ({"labels": labels.numpy()} if labels is not None else {})
        (got,) = session.run(None, feed)
        want = expected(run, n, seed, labels)
        assert got.shape == tuple(want.shape)
        np.testing.assert_allclose(got, want.numpy(), atol=TOL, rtol=0)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    info = json.loads(meta["ganforge"])
    assert (info["z_dim"], info["n_classes"], info["ema"]) == (run.record["z_dim"],
                                                               run.n_classes, run.uses_ema)
    if kind == "vectors":  # the data's units in and out: far from the standardised ones
        assert float(want[:, 0].mean()) > 50 and run.scaling["y"] is not None


# ------------------------------------------------------------------------------ TorchScript

WITHOUT_GANFORGE = textwrap.dedent("""
    import importlib.abc, json, sys
    from pathlib import Path

    class NoGanforge(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "ganforge" or name.startswith("ganforge."):
                raise ModuleNotFoundError(f"No module named {name!r}")

    # An editable install puts the source folder on sys.path; drop it (never torch's folder).
    sys.path[:] = [p for p in sys.path if not (Path(p, "ganforge").exists()
                                               and not Path(p, "torch").exists())]
    sys.meta_path.insert(0, NoGanforge())
    try:
        import ganforge
    except ImportError:
        pass
    else:
        sys.exit("ganforge is importable")
    import numpy as np
    import torch

    extra = {"ganforge.json": ""}
    module = torch.jit.load("g.pt", _extra_files=extra)
    z = torch.from_numpy(np.load("z.npy"))
    args = (z,) + ((torch.from_numpy(np.load("labels.npy")),) if Path("labels.npy").exists()
                   else ())
    np.save("out.npy", module(*args).numpy())
    assert not [m for m in sys.modules if m.split(".")[0] == "ganforge"]
    print(json.loads(extra["ganforge.json"])["z_dim"])
""")


@pytest.mark.parametrize("kind", KINDS)
def test_torchscript_runs_where_ganforge_cannot_be_imported(kind, runs, tmp_path):
    export(runs[kind], "torchscript", tmp_path / "g.pt")
    run = api.load_run(runs[kind])
    z, labels = inputs(run, 6, seed=5)
    np.save(tmp_path / "z.npy", z.numpy())
    if labels is not None:
        np.save(tmp_path / "labels.npy", labels.numpy())
    (tmp_path / "check.py").write_text(WITHOUT_GANFORGE)
    proc = subprocess.run([sys.executable, "-I", "check.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(run.record["z_dim"])
    got = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(got, expected(run, 6, 5, labels).numpy(), atol=TOL, rtol=0)


# -------------------------------------------------------------------------------------- Hub

def with_metrics(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run with a ``ganforge evaluate`` result and an in-loop metric."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    protocol = {"metric": "fid", "n_fake": 1000, "n_real": 1000, "seed": 0,
                "extractor": "mnist-lenet", "extractor_sha256": "ab" * 32,
                "reference": {"dataset": "mnist", "split": "test"}}
    result = {"name": "fid1k_mnist-lenet", "value": 12.3456789, "details": {},
              "protocol": protocol}
    (copy / "metrics.json").write_text(json.dumps({"source": str(copy), "results": [result]}))
    with open(copy / "stats.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 2, "Metrics/label-acc": 0.875}) + "\n")
    return copy


@pytest.mark.parametrize("kind", ["cgan-digits", "dcgan-mnist"])
def test_a_hub_folder_loads_back_and_describes_the_model(kind, runs, tmp_path, capsys):
    source = with_metrics(runs[kind], tmp_path)
    hub = export(source, "hub", tmp_path / "hub")
    assert sorted(p.name for p in hub.iterdir()) == sorted(
        [HUB_CARD, HUB_CONFIG, HUB_SAMPLES, HUB_WEIGHTS])
    for path in hub.iterdir():  # nothing pickled: no pickle protocol header anywhere
        assert not path.read_bytes().startswith(b"\x80")
    meta = json.loads((hub / HUB_CONFIG).read_text())
    original = api.load_run(source)
    assert meta["model"] == original.record and meta["config"] == original.config
    assert meta["ema"] == original.uses_ema and meta["step"] == 2
    loaded = api.load_run(hub)
    labels = [0, 3, 9, 9] if original.n_classes else None
    assert torch.equal(loaded.generate(n=4, labels=labels, seed=2),
                       original.generate(n=4, labels=labels, seed=2))
    assert api.load_config(hub).to_dict() == original.config
    card = (hub / HUB_CARD).read_text()
    assert card.startswith("---\nlibrary_name: ganforge\n") and "](samples.png)" in card
    assert "| fid1k_mnist-lenet | 12.346 | 1000 samples vs 1000 real; reference mnist (test); " \
           "extractor mnist-lenet (sha256 abababababab); seed 0 |" in card
    assert "| label-acc | 0.875 | 2 |" in card
    assert ("| labels | (N,) int64 | class of each sample, 0..9 |" in card) == bool(labels)
    assert ("exponential moving average" in card) == original.uses_ema
    how = ["--per-class", "2"] if labels else ["--n", "20"]
    assert main(["generate", str(hub), *how, "--format", "npz", "--out",
                 str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as npz:
        assert npz["images"].shape == (20, 28, 28)  # one channel: (N, H, W)
        if labels:
            assert npz["labels"].tolist() == [c for c in range(10) for _ in range(2)]


def test_a_changed_hub_weights_file_is_refused(runs, tmp_path, capsys):
    hub = export(runs["gan-mnist"], "hub", tmp_path / "hub")
    blob = bytearray((hub / HUB_WEIGHTS).read_bytes())
    blob[-1] ^= 1
    (hub / HUB_WEIGHTS).write_bytes(bytes(blob))
    assert main(["generate", str(hub), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not match the SHA-256" in err


# --------------------------------------------------------------------------------- refusals

def one_line_error(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ganforge: error: ") and message in err


def test_bad_requests_are_one_line(runs, tmp_path, capsys):
    run = str(runs["gan-mnist"])
    one_line_error(capsys, ["export", run, "--format", "pickle", "--out", str(tmp_path / "g")],
                   "unknown export format 'pickle'; valid export formats: hub, onnx, "
                   "torchscript")
    one_line_error(capsys, ["export", str(tmp_path / "nope"), "--format", "torchscript",
                            "--out", str(tmp_path / "g.pt")], "nope' does not exist; pass the folder")
    (tmp_path / "taken.pt").write_bytes(b"x")
    one_line_error(capsys, ["export", run, "--format", "torchscript", "--out",
                            str(tmp_path / "taken.pt")], "already exists")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("a")
    one_line_error(capsys, ["export", run, "--format", "hub", "--out", str(tmp_path / "full")],
                   "exists and is not empty")
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, ["generate", str(tmp_path / "empty"), "--out",
                            str(tmp_path / "g.png")], "neither a run folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full", "taken.pt"]


@pytest.mark.parametrize("fmt, target", [("onnx", "torch.onnx.export"),
                                         ("torchscript", "torch.jit.trace"),
                                         ("hub", "model_card")])
def test_a_failing_export_leaves_nothing(fmt, target, runs, tmp_path, monkeypatch, capsys):
    if fmt == "onnx":
        onnx_ready()

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke\nsecond line")

    if target == "model_card":
        monkeypatch.setattr(export_module, "model_card", broken)
    else:
        module, name = target.rsplit(".", 1)
        monkeypatch.setattr(sys.modules[module], name, broken)
    out = tmp_path / "out" / ("g" if fmt == "hub" else f"g.{fmt}")
    one_line_error(capsys, ["export", str(runs["cgan-digits"]), "--format", fmt, "--out",
                            str(out)], f"{fmt} export of")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_an_export_that_does_not_reproduce_g_is_refused(runs, tmp_path, monkeypatch):
    original = export_module.reference_output
    monkeypatch.setattr(export_module, "reference_output",
                        lambda run, inputs: original(run, inputs) + 1e-3)
    with pytest.raises(GanforgeError, match="does not reproduce the generator"):
        export(runs["gan-mnist"], "torchscript", tmp_path / "g.pt")
    assert list(tmp_path.iterdir()) == []
