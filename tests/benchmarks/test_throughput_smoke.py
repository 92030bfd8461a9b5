"""Smoke tests of the throughput benchmark: its loops run on the CPU and its report renders."""

from __future__ import annotations

import pytest
import torch

from tests.benchmarks.conftest import import_benches

TINY = dict(warmup_s=0.0, min_warmup_steps=1, window_s=0.0, windows=1, data_min_iters=2,
            synthetic_limit=64)


@pytest.fixture
def bench(monkeypatch):
    b = import_benches(monkeypatch, "throughput", "speed")
    return b.throughput, b.speed


def test_toolkit_and_bare_loop_run_and_report(bench, tmp_path):
    throughput, speed = bench
    proto = speed.Protocol(**TINY)
    rows = [throughput.measure_toolkit("cgan-mnist", 8, "cpu", "bf16", 1, proto,
                                       data_root=tmp_path)]  # no MNIST here: a stand-in
    assert "stand-in" in rows[0]["data"] and rows[0]["images_per_s"]["median"] > 0
    for kind in ("toolkit", "bare"):
        row = throughput.MEASURES[kind](throughput.OVERHEAD_PRESET, 2, "cpu", "fp32", 1, proto)
        assert row["batch"] == 2 and row["images_per_s"]["median"] > 0
        assert row["peak_mem_mib"] > 0 and row["peak_mem_kind"] == "peak RSS"
        rows.append({**row, "kind": kind})
    rows[0]["kind"] = "toolkit"
    overhead = throughput.overhead_rows(rows)
    assert [r["variant"] for r in overhead] == ["fp32"] and overhead[0]["ratio"] > 0
    res = {"command": "test", "date_utc": "now", "device_name": "CPU", "quick": True,
           "machine": {"cpu_model": "cpu", "logical_cores": 2, "torch": torch.__version__,
                       "ganforge_commit": None},
           "protocol": TINY, "wall_s": 1.0, "results": rows, "overhead": overhead,
           "skipped": ["fp16"]}
    text = throughput.render_markdown(res)
    assert "| cgan-mnist | 8 | bf16 |" in text and "| fp32 | 2 |" in text
    assert "Not run on this device: fp16." in text


def test_plan_skips_cuda_only_variants_on_the_cpu(bench):
    throughput, _ = bench
    args = throughput.parse_args(["--device", "cpu", "--quick", "--overhead-variants", "fp32",
                                  "bf16+compile"])
    jobs, skipped = throughput.plan(args)
    assert skipped == ["bf16+compile"]
    assert {(j["kind"], j["preset"], j["variant"]) for j in jobs} == {
        ("toolkit", "cgan-mnist", "fp32"), ("toolkit", "cgan-mnist", "bf16"),
        ("toolkit", "dcgan-mnist", "fp32"), ("toolkit", "dcgan-mnist", "bf16"),
        ("toolkit", "dcgan-celeba64", "fp32"), ("bare", "dcgan-celeba64", "fp32")}
    assert all(j["batch"] == 8 for j in jobs)
    args = throughput.parse_args(["--device", "cpu", "--quick", "--warmup-s", "1.5",
                                  "--window-s", "0.5", "--windows", "7"])
    proto = throughput.plan(args)[0][0]["protocol"]
    assert (proto["warmup_s"], proto["window_s"], proto["windows"]) == (1.5, 0.5, 7)
    assert proto["data_min_iters"] == throughput.QUICK.data_min_iters  # the rest stays


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_cuda_run_without_a_gpu_says_so(bench, capsys):
    throughput, _ = bench
    assert throughput.main(["--device", "cuda"]) == 2
    assert "no CUDA device is visible" in capsys.readouterr().err
