"""The quality benchmark: its bookkeeping on fixed records (exact values), the typical loops'
objectives on fixed tensors, and the whole pipeline on seconds-long budgets and a few hundred
samples scored by the tests' fake evaluator.

The benchmark lives in ``benchmarks/`` (scripts, not a package), so the folder is put on
``sys.path`` the way running ``python benchmarks/quality.py`` would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from types import SimpleNamespace

import pytest
import torch

from ganforge.bench import Store, preset_fingerprint, settings_fingerprint
from ganforge.config import resolve
from ganforge.models.base import DOutput
from tests.benchmarks.conftest import import_benches
from tests.metrics import FakeExtractor


@pytest.fixture
def bench(monkeypatch):
    return import_benches(monkeypatch, "quality", "quality_report", "quality_score", "baseline",
                          "report", "quality_store")


def point(minutes, step, **values):
    return {"minutes": minutes, "checkpoint": f"min_{minutes:g}", "step": step,
            "elapsed_s": minutes * 60, "images_per_s": 100.0, "precision": 0.5, "recall": 0.5,
            **values}


def record(name, seed, budget, points, kind="preset", conditional=True, compare="typ"):
    return {"protocol": "quality-v2", "kind": kind, "name": name, "seed": seed,
            "budget_minutes": budget, "conditional": conditional, "run_dir": f"runs/{name}",
            "compare_with": compare if kind == "preset" else None, "points": points}


# ----------------------------------------------------------------------------- bookkeeping

def test_minutes_to_reach_interpolates_in_log_minutes(bench):
    reach = bench.quality_report.minutes_to_reach
    minutes, fid = [1, 2, 5, 10, 15], [40.0, 20.0, 10.0, 8.0, 6.0]
    t, how = reach(minutes, fid, 15.0, higher_is_better=False)  # halfway from 20 to 10
    assert how == "=" and t == pytest.approx(math.sqrt(2 * 5), rel=1e-12)
    assert reach(minutes, fid, 6.0, False) == (15, "=")
    assert reach(minutes, fid, 50.0, False) == (1, "<=")
    assert reach(minutes, fid, 5.0, False) == (15, ">")
    t, how = reach([1, 4], [0.5, 0.9], 0.8, higher_is_better=True)  # 3/4 of the way: 4^0.75
    assert how == "=" and t == pytest.approx(4 ** 0.75, rel=1e-12)
    assert reach([1, 2], [None, None], 1.0, True) == (None, "")


def test_ratio_says_which_way_it_is_bounded(bench):
    ratio = bench.quality_report.ratio_text
    assert ratio((15, "="), (3, "=")) == (5.0, "=")
    assert ratio((15, "="), (1, "<=")) == (15.0, ">=")     # ganforge was there at once
    assert ratio((15, "="), (15, ">")) == (1.0, "<")       # ganforge never got there
    assert ratio((1, "<="), (2, "=")) == (0.5, "<=")
    assert ratio((1, "<="), (1, "<=")) == (None, "")


def test_summary_points_means_targets_and_time_to_quality(bench):
    qr = bench.quality_report
    c = dict(acc=0.99, worst=0.96, twin_acc=0.99, disagreement=0.01)
    records = [
        # seed 0: a 15-minute curve run (its 5-minute checkpoint is the seed's table point)
        record("p", 0, 15, [point(1, 10, fid=30.0, **c), point(5, 50, fid=3.0, **c),
                            point(15, 150, fid=1.0, **c)]),
        record("p", 1, 5, [point(1, 10, fid=20.0, **c), point(5, 60, fid=4.0, **c)]),
        record("p", 1, 5, [point(5, 70, fid=5.0, **c)]),            # a re-run replaces it
        record("p", 2, 10, [point(5, 90, fid=9.0, **c)]),            # a 5-minute run of seed 2
        record("p", 2, 5, [point(5, 80, fid=2.0, **c)]),             # ... wins over a checkpoint
        record("typ", 0, 15, [point(1, 5, fid=40.0, **dict(c, acc=0.5)),
                              point(5, 20, fid=10.0, **dict(c, acc=0.8)),
                              point(15, 60, fid=6.0, **dict(c, acc=0.9))], kind="typical"),
        record("u", 0, 5, [point(5, 40, fid=4.0, entropy=2.26, min_share=0.071)],
               conditional=False, compare=None),
    ]
    summary = qr.summarise(records, 5, floor=0.5)
    p = summary["p"]
    assert p["seeds"] == [0, 1, 2] and p["steps"][0] == pytest.approx((50 + 70 + 80) / 3)
    assert p["fid"][0] == pytest.approx(10 / 3) and p["fid"][1] == pytest.approx(
        math.sqrt(((3 - 10 / 3) ** 2 + (5 - 10 / 3) ** 2 + (2 - 10 / 3) ** 2) / 2))
    assert p["fid_x_floor"][0] == pytest.approx(20 / 3)
    assert p["pass"] == {"acc": True, "worst": True, "recall": True, "fid_x_floor": True}
    assert p["pass_best"] == {"acc": False, "recall": False, "fid_x_floor": False}
    assert "pass" not in summary["typ"] and summary["typ"]["fid"] == [10.0, 0.0]
    assert summary["typ"]["acc"] == [0.8, 0.0]
    assert summary["u"]["pass"] == {"fid_x_floor": True, "entropy": True, "min_share": True,
                                    "recall": True}
    checks = {t["target"].split(":")[0]: t for t in qr.target_checks(summary)}
    assert checks["p"]["pass"] and not checks["best conditional preset"]["pass"]
    curve = qr.curves(records, [1, 5, 15])
    assert curve["p"]["fid"] == [30.0, 3.0, 1.0] and curve["p"]["seeds"] == [0]
    (row,) = qr.time_to_quality(curve)
    # X = 6 (the loop at 15 min); ganforge: 30 -> 3 between 1 and 5 min, 24/27 of the way
    assert row["fid"]["x"] == 6.0 and row["fid"]["typical_minutes"] == [15, "="]
    t = math.exp(24 / 27 * math.log(5))
    assert row["fid"]["ganforge_minutes"][0] == pytest.approx(t)
    assert row["fid"]["ratio"] == pytest.approx(15 / t) and row["fid"]["ratio_is"] == "="
    # label accuracy: X = 0.9, which ganforge (0.99 throughout) had by its first point
    assert row["acc"]["ratio"] == pytest.approx(15.0) and row["acc"]["ratio_is"] == ">="


def test_plan_shares_the_curve_seed_unless_told(bench):
    q = bench.quality
    args = q.parse_args(["--presets", "cgan-mnist", "--typical", "typical-cgan",
                         "--seeds", "0", "1"])
    jobs = [(j.kind, j.name, j.seed, j.budget, j.timed) for j in q.plan(args)]
    assert jobs == [("preset", "cgan-mnist", 0, 15, [1, 2, 5, 10]),
                    ("preset", "cgan-mnist", 1, 5, [1, 2]),
                    ("typical", "typical-cgan", 0, 15, [1, 2, 5, 10]),
                    ("typical", "typical-cgan", 1, 5, [1, 2])]
    args = q.parse_args(["--presets", "cgan-mnist", "--typical", "--seeds", "0",
                         "--separate-curve-runs"])
    assert [(j.seed, j.budget) for j in q.plan(args)] == [(0, 15), (0, 5)]


def logged(name, kind="preset", sha=None, overrides=(), **kw):
    """A run as quality.py builds it, with two scored points."""
    c = dict(acc=0.99, worst=0.96, twin_acc=0.99, disagreement=0.01)
    run = dict(record(name, 0, 5, [point(1, 10, fid=3.0, **c),
                                   point(5, 50, fid=2.5, per_class=[0.9, 1.0], **c)], kind=kind),
               threads=2, steps=50, train_s=300.01, images_per_s=10.67, dataset="mnist",
               settings_sha="" if kind == "typical" else sha, wall_s=302.5,
               loadavg_before=[0.5, 0.25, 0.125], loadavg_after=[2.0, 1.5, 1.0],
               extra_overrides=list(overrides), command="python benchmarks/quality.py",
               date_utc="2026-12-01 10:00", evaluator="fake-lenet", n_samples=200,
               score_s=4.5, cpu_model="Test CPU")
    return dict(run, **kw)


def test_a_run_is_one_store_record_and_back(bench):
    qs = bench.quality_store
    run = logged("cgan-mnist", sha="0123456789abcdef")
    rec = qs.to_record(run, source="benchmarks/results/quality_runs.jsonl#L7")
    assert (rec.bench, rec.name, rec.origin, rec.date) == ("quality", "cgan-mnist", "measured",
                                                          "2026-12-01T10:00Z")
    assert rec.values == {
        "steps": 50, "train_s": 300.01, "images_per_s": 10.67, "wall_s": 302.5, "score_s": 4.5,
        "1min/step": 10, "1min/elapsed_s": 60, "1min/images_per_s": 100.0,
        "1min/precision": 0.5, "1min/recall": 0.5, "1min/fid": 3.0, "1min/acc": 0.99,
        "1min/worst": 0.96, "1min/twin_acc": 0.99, "1min/disagreement": 0.01,
        "5min/step": 50, "5min/elapsed_s": 300, "5min/images_per_s": 100.0,
        "5min/precision": 0.5, "5min/recall": 0.5, "5min/fid": 2.5,
        "5min/per_class": [0.9, 1.0], "5min/acc": 0.99, "5min/worst": 0.96,
        "5min/twin_acc": 0.99, "5min/disagreement": 0.01}
    assert rec.protocol == {
        "name": "quality-v2", "kind": "preset", "seed": 0, "budget_minutes": 5,
        "threads": 2, "conditional": True, "compare_with": "typ", "dataset": "mnist",
        "evaluator": "fake-lenet", "n_samples": 200, "run_dir": "runs/cgan-mnist",
        "points": [{"minutes": 1, "checkpoint": "min_1"}, {"minutes": 5, "checkpoint": "min_5"}]}
    assert rec.machine == {"cpu": "Test CPU", "cores": "unknown", "threads": 2,
                           "load_before": [0.5, 0.25, 0.125], "load_after": [2.0, 1.5, 1.0],
                           "gpu": None}
    assert (rec.settings_sha, rec.settings_of) == ("0123456789abcdef",
                                                   {"preset": "cgan-mnist", "overrides": []})
    assert rec.ganforge == {"version": "unknown", "commit": "unknown"}
    assert qs.from_record(rec) == dict(run, date_utc="2026-12-01T10:00Z")
    typical = qs.to_record(logged("typ", kind="typical"))
    assert (typical.settings_sha, typical.settings_of, typical.source) == (None, None, None)
    assert qs.from_record(typical) == dict(logged("typ", kind="typical"),
                                           date_utc="2026-12-01T10:00Z")


def test_runs_of_an_earlier_preset_are_stale_in_the_store(bench, tmp_path):
    qs = bench.quality_store
    now = preset_fingerprint("cgan-mnist")
    dropout = ["model.d_dropout=0.3"]
    store = Store(tmp_path / "records.jsonl")
    for run in (logged("cgan-mnist", sha=now),
                logged("cgan-mnist", sha="0" * 16),                  # an earlier form
                logged("typ", kind="typical"),                       # fixed code
                logged("no-such-preset", sha=now),                   # a preset since removed
                logged("cgan-mnist", sha=preset_fingerprint("cgan-mnist", dropout),
                       overrides=dropout)):                          # judged under its --set
        store.append(qs.to_record(run))
    store.append(dataclasses.replace(qs.to_record(logged("cgan-mnist", sha=now)),
                                     protocol={"name": "quality-v1", "kind": "preset"}))
    runs = qs.load_runs(store)  # this protocol's runs only
    assert [(r["name"], r["current"]) for r in runs] == [
        ("cgan-mnist", True), ("cgan-mnist", False), ("typ", True), ("no-such-preset", False),
        ("cgan-mnist", True)]
    # a run's own saved config gives the fingerprint its preset resolves to
    assert settings_fingerprint(json.loads(resolve("cgan-mnist").to_json())) == now


# ----------------------------------------------------------------------------- typical loops

def test_typical_objectives_on_fixed_tensors(bench):
    bl = bench.baseline
    w = torch.tensor([3.0, 4.0])  # a linear critic: its input gradient is w everywhere, |w| = 5

    def critic(x, y=None):
        return DOutput(adv=x.flatten(1) @ w, cls=x.flatten(1) * torch.tensor([1.0, -1.0]))

    loop = SimpleNamespace(D=critic, labels=lambda y: None, gp_weight=10.0)
    real, fake = torch.tensor([[1.0, 1.0], [0.0, 2.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    d_loss, g_loss = bl.OBJECTIVES["wgan-gp"]
    # E[D(fake)] - E[D(real)] + 10 (5 - 1)^2 = 1.5 - 7.5 + 160
    assert d_loss(loop, real, None, fake, None).item() == pytest.approx(154.0)
    assert g_loss(loop, fake, None).item() == pytest.approx(-1.5)
    y = torch.tensor([0, 1])
    d_loss, g_loss = bl.OBJECTIVES["acgan"]
    sp = torch.nn.functional.softplus
    adv_r, adv_f = torch.tensor([7.0, 8.0]), torch.tensor([0.0, 3.0])
    ce_r = torch.nn.functional.cross_entropy(torch.tensor([[1.0, -1.0], [0.0, -2.0]]), y)
    ce_f = torch.nn.functional.cross_entropy(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), y)
    expected = ((sp(-adv_r).mean() + ce_r) / 2 + (sp(adv_f).mean() + ce_f) / 2) / 2
    assert d_loss(loop, real, y, fake, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert g_loss(loop, fake, y).item() == pytest.approx(
        ((sp(-adv_f).mean() + ce_f) / 2).item(), rel=1e-6)


@pytest.mark.parametrize("name", ["typical-acgan", "typical-wgan-gp"])
def test_typical_loops_train_and_count_images(bench, name, mnist_root):
    bl = bench.baseline
    spec = bl.TYPICAL[name]
    loop = bl.BaselineGAN(spec.config(), batch_size=8, root=mnist_root, limit=64,
                          objective=spec.objective, n_critic=spec.n_critic)
    before = [p.clone() for p in loop.G.parameters()]
    assert loop.run(1) > 0
    assert loop.images_per_step() == 8 * spec.n_critic
    assert any(not torch.equal(a, b) for a, b in zip(before, loop.G.parameters()))


# ----------------------------------------------------------------------------- the pipeline

def test_the_whole_benchmark_on_seconds(bench, tmp_path, monkeypatch, mnist_root):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))
    results, runs = tmp_path / "results", tmp_path / "runs"
    argv = ["--presets", "cgan-mnist", "dcgan-mnist", "--typical", "typical-cgan",
            "--seeds", "0", "1", "--minutes", "0.02", "--curve-minutes", "0.01", "0.02", "0.04",
            "--samples", "200", "--reference-n", "500", "--threads", "1",
            "--data-root", str(mnist_root), "--runs", str(runs), "--results", str(results),
            "--store", str(tmp_path / "records.jsonl")]
    assert bench.quality.main(argv, evaluator=FakeExtractor()) == 0
    paths = bench.quality.parse_args(argv)  # results/quality_cpu_<kind of CPU>.*
    stem, png, cpu = paths.stem, paths.curve_png, bench.report.cpu_model()
    assert stem.name == "quality_cpu_" + bench.quality.machine_slug(cpu)
    store = Store(tmp_path / "records.jsonl")
    written = store.records()  # one record per run, measured now by this ganforge
    assert {(r.bench, r.origin, r.source, r.machine["cores"]) for r in written} == {
        ("quality", "measured", None, os.cpu_count())}
    assert all(r.ganforge["version"] and r.date.endswith("Z") for r in written)
    assert [r.settings_of for r in written] == [{"preset": n, "overrides": []} for n in (
        "cgan-mnist", "cgan-mnist", "dcgan-mnist", "dcgan-mnist")] + [None, None]
    assert store.stale() == []
    records = bench.quality_store.load_runs(store)
    assert [(r["name"], r["seed"], r["budget_minutes"]) for r in records] == [
        ("cgan-mnist", 0, 0.04), ("cgan-mnist", 1, 0.02), ("dcgan-mnist", 0, 0.04),
        ("dcgan-mnist", 1, 0.02), ("typical-cgan", 0, 0.04), ("typical-cgan", 1, 0.02)]
    for r in records:
        assert r["protocol"] == "quality-v2" and r["threads"] == 1 and r["steps"] >= 1
        assert len(r["loadavg_before"]) == 3 and len(r["loadavg_after"]) == 3
        assert r["images_per_s"] > 0 and r["wall_s"] > 0 and r["reference_n"] == 500
        assert r["evaluator"] == "fake-lenet" and r["n_samples"] == 200
        assert r["cpu_model"] == cpu
        minutes = [p["minutes"] for p in r["points"]]
        assert minutes == ([0.01, 0.02, 0.04] if r["budget_minutes"] == 0.04 else [0.01, 0.02])
        steps = [p["step"] for p in r["points"]]
        assert steps == sorted(steps) and steps[-1] == r["steps"]
        keys = {"acc", "worst", "disagreement"} if r["conditional"] else {"entropy", "min_share"}
        assert all(keys | {"fid", "precision", "recall"} <= set(p) for p in r["points"])
    assert {r["name"]: r["conditional"] for r in records} == {
        "cgan-mnist": True, "dcgan-mnist": False, "typical-cgan": True}
    assert records[0]["compare_with"] == "typical-cgan" and records[4]["kind"] == "typical"
    assert written[0].settings_sha == preset_fingerprint("cgan-mnist")
    assert written[4].settings_sha is None and records[4]["settings_sha"] == ""

    res = json.loads(stem.with_suffix(".json").read_text())
    assert res["floor"]["n"] == 200 and res["floor"]["reference_overlap"] == 0
    assert sorted(res["summary"]) == ["cgan-mnist", "dcgan-mnist", "typical-cgan"]
    assert res["summary"]["cgan-mnist"]["seeds"] == [0, 1]
    assert set(res["summary"]["cgan-mnist"]["pass"]) == {"acc", "worst", "recall",
                                                          "fid_x_floor"}
    assert [row["preset"] for row in res["time_to_quality"]] == ["cgan-mnist"]
    assert res["curves"]["typical-cgan"]["minutes"] == [0.01, 0.02, 0.04]
    md = stem.with_suffix(".md").read_text()
    for heading in ("## Targets", "## Conditional models at 0.02 minutes",
                    "## Unconditional models", "## Time to quality", "## Runs", "## Commands"):
        assert heading in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    at = [i for i, line in enumerate(rows) if line.startswith(("| cgan-mnist |",
                                                               "| *typical-cgan* |"))]
    assert len(at) >= 2 and at[1] == at[0] + 1  # the typical loop right under its preset
    assert png == results / f"quality_time_to_quality_{bench.quality.machine_slug(cpu)}.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 150_000

    stem.with_suffix(".md").unlink()
    assert bench.quality.main(argv + ["--summarise-only"], evaluator=FakeExtractor()) == 0
    def runs_table(text):
        return text.split("## Runs")[1].split("## Commands")[0]

    assert runs_table(stem.with_suffix(".md").read_text()) == runs_table(md)

    # a run of an earlier form of a preset is neither summarised nor skipped to
    log = store.path
    lines = log.read_text().splitlines()
    stale = json.loads(lines[2])
    stale["settings_sha"] = "0" * 16
    log.write_text("\n".join(lines[:2] + [json.dumps(stale)] + lines[3:]) + "\n")
    assert bench.quality.main(argv + ["--summarise-only"], evaluator=FakeExtractor()) == 0
    res = json.loads(stem.with_suffix(".json").read_text())
    assert res["excluded_earlier_settings"] == ["dcgan-mnist"]
    assert res["summary"]["dcgan-mnist"]["seeds"] == [1]
    assert "earlier form of `dcgan-mnist`" in stem.with_suffix(".md").read_text()
    assert bench.quality.main(argv + ["--skip-done"], evaluator=FakeExtractor()) == 0
    rerun = [json.loads(line) for line in log.read_text().splitlines()][len(lines):]
    assert [(r["name"], r["protocol"]["seed"], r["protocol"]["budget_minutes"])
            for r in rerun] == [("dcgan-mnist", 0, 0.04)]

    # a run of another kind of machine is left out of this machine's tables
    lines = log.read_text().splitlines()
    other = json.loads(lines[1])
    assert (other["name"], other["protocol"]["seed"]) == ("cgan-mnist", 1)
    other["machine"]["cpu"] = "Other CPU 9000"
    log.write_text("\n".join([lines[0], json.dumps(other)] + lines[2:]) + "\n")
    assert bench.quality.main(argv + ["--summarise-only"], evaluator=FakeExtractor()) == 0
    res = json.loads(stem.with_suffix(".json").read_text())
    assert res["excluded_other_scoring"] == 1 and res["summary"]["cgan-mnist"]["seeds"] == [0]
    assert "1 logged runs of another kind of machine" in stem.with_suffix(".md").read_text()
    # a page with no conditional run says so instead of showing the floor row alone
    log.write_text("\n".join(line for line in log.read_text().splitlines()
                             if json.loads(line)["protocol"]["conditional"] is False) + "\n")
    assert bench.quality.main(argv + ["--summarise-only"], evaluator=FakeExtractor()) == 0
    md = stem.with_suffix(".md").read_text()
    conditional = md.split("## Conditional models")[1].split("## Unconditional models")[0]
    assert "None measured on this kind of machine yet." in conditional
    assert "| real MNIST test digits" not in conditional
    assert "| dcgan-mnist |" in md.split("## Unconditional models")[1]


def test_results_files_are_named_after_the_kind_of_cpu(bench):
    slug = bench.quality.machine_slug
    assert slug("Intel(R) Xeon(R) Processor") == "intel-xeon"
    assert slug("AMD EPYC 7B13 64-Core Processor") == "amd-epyc"
    assert slug("Intel(R) Core(TM) i7-1165G7 CPU @ 2.80GHz") == "intel-core"
    assert slug("Apple M2") == "apple-m2" and slug("") == "unknown"
