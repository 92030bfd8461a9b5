"""The migration into the results store, on a small copy of every format it reads
(``fixtures/before_store``: a repository with one or two entries per results file), and the
records it makes.

The benchmark scripts live in ``benchmarks/`` (scripts, not a package): see ``conftest.py``.
The store the repository commits is checked in ``tests/bench/test_store.py``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from ganforge.bench import Store, preset_fingerprint, settings_fingerprint
from ganforge.config import resolve
from tests.benchmarks.conftest import import_benches

FIXTURE = Path(__file__).parent / "fixtures" / "before_store"
RESULTS = "benchmarks/results/"
TEST_MACHINE = {"cpu": "Test CPU", "cores": 2, "threads": 2, "load_before": [1.0, 1.0, 1.0],
                "load_after": [2.0, 2.0, 2.0], "gpu": None, "logical_cores": 2, "torch": "2.0"}
H200 = {"cpu": "Intel Xeon", "cores": 16, "threads": "unknown", "load_before": None,
        "load_after": None, "gpu": "NVIDIA H200", "torch": "2.11.0+cu130"}
UNKNOWN_CODE = {"version": "unknown", "commit": "unknown"}


@pytest.fixture
def migrated(monkeypatch, tmp_path):
    """The fixture repository migrated once: (the module, the repository, its store)."""
    mig = import_benches(monkeypatch, "migrate_to_store").migrate_to_store
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURE, repo)
    store = Store(repo / RESULTS / "records.jsonl")
    assert mig.main(["--repo", str(repo)]) == 0
    return mig, repo, store


def test_every_format_becomes_records_with_their_sources(migrated):
    _, _, store = migrated
    d32 = {"model": {"d_width": 32}, "loss": {}, "optim": {}, "train": {"seed": 0}}
    g32 = settings_fingerprint({"model": {"g_width": 32}, "loss": {}, "optim": {}, "train": {}})
    u, m, t = "unrecorded", "measured", "transcribed"
    assert [(r.bench, r.name, r.origin, r.source.replace(RESULTS, ""), r.settings_sha)
            for r in store.records()] == [
        ("quality", "cgan-mnist", m, "quality_runs.jsonl#L1", "0123456789abcdef"),
        ("quality", "dcgan-mnist", m, "quality_runs_v1.jsonl#L1", u),
        ("quality", "floor", m, "quality_cpu_v1.json#fid_floor", None),
        ("quality", "floor", m, "quality_cpu_test-cpu.json#floor", None),
        ("sweep", "dcgan-mnist:base (the preset then)", m, "sweeps/dcgan-mnist.jsonl#L1", u),
        ("sweep", "dcgan-mnist:d32", m, "sweeps/dcgan-mnist.jsonl#L2",
         settings_fingerprint(d32)),
        ("kmnist", "acgan-kmnist:seed000", m, "kmnist_acgan.json#runs.seed[0]", g32),
        ("kmnist", "acgan-kmnist-tuned:g32", m, "kmnist_acgan.json#runs.variants[0]", g32),
        ("kmnist", "real KMNIST test characters (floor, ceiling)", m, "kmnist_acgan.json#floor",
         None),
        ("speed", "cgan-mnist", m, "defaults/speed_cpu.json#presets[0]", u),
        ("speed", "cgan-mnist", m, "speed_cpu.json#presets[0]", u),
        ("speed", "cgan-mnist vs typical loop (seed 001)", m, "speed_cpu.json#comparisons[0]",
         u),
        ("efficiency", "fp32 matmul peak", m, "efficiency_cpu.json#peak", None),
        ("efficiency", "dcgan-mnist", m, "efficiency_cpu.json#rows[0]", u),
        ("metrics-speed", "fid10k_mnist-lenet", m, "metrics_speed.json", None),
        ("condition", "cgan-ring-angle (model.conditional=false)", m,
         "condition_ring.json#runs[0]", u),
        ("condition", "cgan-mnist conditioned on image features", m, "condition_features.json",
         u),
        ("evaluator", "mnist-lenet v2 seed 0", m, "evaluator_mnist.json#runs[0]", None),
        ("evaluator-reading", "person", m, "evaluator_reading.json#person", None),
        ("evaluator-reading", "v2 primary", m, "evaluator_reading.json#evaluators.v2 primary",
         None),
        ("evaluator-reading", "v2 label-acc metric", m,
         "evaluator_reading.json#label_acc_metric.v2", None),
        ("parzen", "real digits", m, "parzen_mnist.json#real", None),
        ("parzen", "gan-mnist", m, "parzen_mnist.json#runs.gan-mnist[0]", u),
        ("faces", "celeba-lenet (face evaluator)", m, "faces_cpu.json#evaluator", None),
        ("faces", "wgan-gp-celeba64", m, "faces_cpu.json#wgan", u),
        ("faces", "r3gan-celeba32", m, "faces_cpu.json#tuned", u),
        ("faces", "cdcgan-celeba64-attributes", m, "faces_cpu.json#attributes[0]", u),
        ("faces", "r3gan-celeba32-attributes", m, "faces_cpu.json#attributes[1]", u),
        ("throughput", "dcgan-mnist", m, "throughput_cuda.json#results[0]", u),
        ("throughput", "cgan-mnist", t, "gpu_check_h200.md#L13", u),
        ("throughput", "cgan-mnist", t, "gpu_check_h200.md#L13", u),
        ("profile", "dcgan-celeba64", t, "gpu_check_h200.md#L17", u),
        ("kmnist", "acgan-kmnist-tuned:g32", t, "kmnist_gpu_screen.md#L15", u),
        ("kmnist", "acgan-kmnist-tuned:g32lr5", t, "kmnist_gpu_screen.md#L16", u),
        ("quick-start", "cgan-digits", t, "src/ganforge/configs/cgan-digits.toml#L3 and "
         "README.md#L3", u),
        ("quick-start", "cgan-digits", t, "src/ganforge/configs/cgan-digits.toml#L3 and "
         "README.md#L3", u)]


def test_numbers_and_facts_are_copied_as_the_files_have_them(migrated):
    _, _, store = migrated
    by = {r.source: r for r in store.records()}
    run = by[RESULTS + "quality_runs.jsonl#L1"]
    assert run.values["2min/fid"] == 4.25 and run.values["1min/per_class"] == [0.8, 1.0]
    assert (run.date, run.command, run.machine["cpu"]) == (
        "2026-12-01T10:00Z", "python benchmarks/quality.py", "Test CPU")
    v1 = by[RESULTS + "quality_runs_v1.jsonl#L1"]  # its command: the one of its page
    assert dataclasses.asdict(v1) == {  # that names its preset, seed, minutes and threads
        "bench": "quality", "name": "dcgan-mnist",
        "values": {"steps": 1989, "images_per_s": 614.38, "fid": 13.39631505338599,
                   "entropy": 2.25, "wall_s": 326.4},
        "protocol": {"name": "quality-v1", "seed": 1, "minutes": 5.0, "threads": 1,
                     "conditional": False},
        "machine": {"cpu": "Test CPU", "cores": "unknown", "threads": 1, "load_before": None,
                    "load_after": None, "gpu": None},
        "command": "python benchmarks/quality.py --presets dcgan-mnist --seeds 0 1 --minutes 5 "
                   "--threads 1", "date": "unknown", "settings_sha": "unrecorded",
        "settings_of": {"preset": "dcgan-mnist", "overrides": []},
        "ganforge": {"version": "unknown", "commit": "58acb6a"}, "origin": "measured",
        "source": RESULTS + "quality_runs_v1.jsonl#L1", "schema": 1}
    speed = by[RESULTS + "speed_cpu.json#presets[0]"]
    assert speed.values == {"images_per_s/median": 466.9537366245373, "images_per_s/min": 454.5,
                            "images_per_s/max": 499.0, "images_per_s/windows": [454.5, 499.0],
                            "step_ms": 137.05854559091017, "peak_rss_mib": 838.78125}
    assert speed.protocol == {"warmup_s": 3.0, "windows": 2, "quick": False, "batch": 64,
                              "data": "MNIST", "threads": 2, "n_critic": 1,
                              "steps_per_window": 22, "default": True}
    assert (speed.machine, speed.ganforge, speed.date) == (
        TEST_MACHINE, {"version": "unknown", "commit": "abc1234"}, "2026-11-25T20:38:41Z")
    assert speed.settings_of == {"preset": "cgan-mnist", "overrides": ["train.batch_size=64"]}
    # merged files: each entry gets the command that ran it, its date and machine only then
    seed, g32 = (by[RESULTS + f"kmnist_acgan.json#runs.{k}"]
                 for k in ("seed[0]", "variants[0]"))
    assert seed.values["per_class"] == [0.7, None]  # the file's NaN
    assert (seed.command, seed.date, seed.machine["cpu"], seed.machine["load_before"]) == (
        "python benchmarks/kmnist_acgan.py --parts seed levers five", "unknown", "unknown",
        [1.5, 1.5, 1.5])
    assert (g32.date, g32.machine["cpu"]) == ("2026-11-29T22:30:48Z", "Test CPU")
    evaluator, attributes = (by[RESULTS + f"faces_cpu.json#{k}"]
                             for k in ("evaluator", "attributes[1]"))
    assert (evaluator.command, evaluator.ganforge["commit"]) == (
        "python benchmarks/faces.py --minutes 15", "0ld0ld0")
    assert attributes.date == "2026-11-29T18:33:02Z"
    assert "path" not in evaluator.protocol  # a machine's home folder
    features = by[RESULTS + "condition_features.json"]
    assert "samples_png" not in features.protocol  # a temporary folder
    sweep = by[RESULTS + "sweeps/dcgan-mnist.jsonl#L2"]
    assert sweep.values == {"steps": 700, "images_per_s": 290.0, "wall_s": 306.0, "fid": 8.1,
                            "entropy": 2.3, "fid_floor": 0.915}


def test_transcribed_numbers_say_where_they_were_copied(migrated):
    _, _, store = migrated
    copied = [r for r in store.records() if r.origin == "transcribed"]
    fp32 = copied[0]
    assert dataclasses.asdict(fp32) == {
        "bench": "throughput", "name": "cgan-mnist",
        "values": {"images_per_s/median": 10543, "peak_mem_mib": 116},
        "protocol": {"batch": 64, "variant": "fp32", "device": "cuda",
                     "peak_mem_kind": "cuda max allocated",
                     "read_from": "the command's progress lines (median of 5 windows)"},
        "machine": H200, "command": "python benchmarks/throughput.py --device cuda --presets "
        "cgan-mnist --variants fp32 bf16", "date": "2026-11-26", "settings_sha": "unrecorded",
        "settings_of": {"preset": "cgan-mnist", "overrides": ["train.batch_size=64"]},
        "ganforge": UNKNOWN_CODE, "origin": "transcribed",
        "source": RESULTS + "gpu_check_h200.md#L13", "schema": 1}
    assert copied[1].values == {"images_per_s/median": 8349, "peak_mem_mib": 118}
    assert copied[2].values == {"step_ms": 8.49, "images_per_s": 15079, "gpu_busy_ms": 130.7,
                                "gpu_busy_ms_per_step": 6.5, "cpu_ms": 197,
                                "cpu_pct_in_cudaLaunchKernel": 22, "kernel_launches": 7700,
                                "kernel_launches_per_step": 385}
    assert copied[2].settings_of == {"preset": "dcgan-celeba64", "overrides": ["train.amp=bf16"]}
    lr5 = copied[4]
    assert lr5.values == {"acc": 0.963, "acc_ratio_to_ceiling": 0.987, "worst": 0.904,
                          "fid": 18.19, "fid_ratio_to_floor": 19.8}
    assert lr5.settings_of == {"preset": "acgan-kmnist-tuned", "overrides": [
        "model.g_width=32", "optim.lr_g=5e-4", "optim.lr_d=5e-4"]}
    assert lr5.command == ("PYTHONPATH=src:benchmarks python benchmarks/kmnist_acgan.py --parts "
                           "variants --variant \"g32lr5:model.g_width=32,optim.lr_g=5e-4,"
                           "optim.lr_d=5e-4,train.steps=13294,train.device=cuda\"")
    assert (lr5.date, lr5.ganforge["commit"], lr5.machine["gpu"]) == (
        "2026-11-29", "5503a0f", "NVIDIA H200")
    seeds = [(r.values, r.protocol["seed"], r.command) for r in copied[5:]]
    assert seeds == [
        ({"acc": 0.997, "worst": 0.992, "fid": 8.4, "wall_s": 192}, 0,
         "ganforge train --preset cgan-digits"),
        ({"acc": 0.993, "worst": 0.976, "fid": 5.4, "wall_s": 192}, 1,
         "ganforge train --preset cgan-digits --set train.seed=1")]
    # every transcribed record is stale: history, never a preset's current number
    assert all(store.is_stale(r) for r in copied)


def test_a_second_run_adds_nothing(migrated, capsys):
    mig, repo, store = migrated
    before = store.path.read_bytes()
    capsys.readouterr()
    assert mig.main(["--repo", str(repo)]) == 0
    assert capsys.readouterr().out == f"0 records added to {store.path}\n"
    assert store.path.read_bytes() == before
    # a results file rewritten by its benchmark adds its new numbers only
    path = repo / RESULTS / "metrics_speed.json"
    data = json.loads(path.read_text())
    data["seconds"]["cold"]["median"] = 7.5
    path.write_text(json.dumps(data))
    (added,) = mig.migrate(repo, store)
    assert (added.bench, added.values["seconds/cold/median"]) == ("metrics-speed", 7.5)


def test_recorded_settings_are_carried_to_the_current_form(monkeypatch):
    mig = import_benches(monkeypatch, "migrate_to_store").migrate_to_store
    now = resolve("dcgan-mnist").to_dict()
    trained = {k: dict(now[k]) for k in ("model", "loss", "optim", "train")}
    trained["loss"]["clip"] = 0.01  # the old form held every component's settings
    assert mig.carried_fingerprint(trained, "dcgan-mnist", []) == \
        preset_fingerprint("dcgan-mnist")
    trained["optim"]["lr_g"] = 1.0  # a setting the preset no longer trains with
    assert mig.carried_fingerprint(trained, "dcgan-mnist", []) == settings_fingerprint(trained)
    assert mig.carried_fingerprint(trained, "no-such-preset", []) == \
        settings_fingerprint(trained)
