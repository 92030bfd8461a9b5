"""The results store: records checked against the schema, appended whole, stale when their
preset's settings moved on, and listed by ``ganforge bench status``; and the store the
repository commits (``benchmarks/results/records.jsonl``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ganforge.bench import Record, Store, StoreError, preset_fingerprint, settings_fingerprint
from ganforge.cli import main
from ganforge.config import resolve

RECORDS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "records.jsonl"
RESULTS = "benchmarks/results/"
MACHINE = {"cpu": "Test CPU", "cores": 2, "threads": 2, "load_before": [0.1, 0.1, 0.1],
           "load_after": [1.9, 1.2, 0.6], "gpu": None}


def record(name: str = "dcgan-mnist", preset: str | None = "dcgan-mnist", **kw) -> Record:
    rec = Record.now("quality", name, {"fid_ratio": 9.1}, {"minutes": 5, "seed": 0},
                     "python benchmarks/quality.py --presets dcgan-mnist", MACHINE,
                     preset=preset)
    return dataclasses.replace(rec, **kw)


def test_a_record_round_trips_and_says_what_it_trained_with(tmp_path):
    store = Store(tmp_path / "records.jsonl")
    written = store.append(record())
    (back,) = store.records()
    assert back == written
    assert back.settings_sha == settings_fingerprint(resolve("dcgan-mnist").to_dict())
    assert back.settings_of == {"preset": "dcgan-mnist", "overrides": []}
    assert back.ganforge["version"] and back.date.endswith("Z") and back.origin == "measured"
    assert store.current() == [back] and store.stale() == []


def test_the_fingerprint_ignores_what_a_benchmark_sets_per_run():
    base = resolve("dcgan-mnist").to_dict()
    same = resolve("dcgan-mnist", overrides=["train.seed=3", "train.minutes=5",
                                             "train.threads=2", "log.log_every=7"]).to_dict()
    other = resolve("dcgan-mnist", overrides=["optim.lr_g=1e-4"]).to_dict()
    assert settings_fingerprint(base) == settings_fingerprint(same)
    assert settings_fingerprint(base) != settings_fingerprint(other)
    assert preset_fingerprint("no-such-preset") is None


def test_a_record_of_an_earlier_form_of_its_preset_is_stale(tmp_path):
    store = Store(tmp_path / "records.jsonl")
    old = store.append(record(settings_sha="0123456789abcdef"))
    new = store.append(record())
    typical = store.append(record(name="typical-dcgan", preset=None))
    assert store.stale() == [old]
    assert store.current() == [new, typical]  # fixed code is never stale
    assert store.current(bench="speed") == []


@pytest.mark.parametrize("line, problem", [
    ("[1, 2]", "line 1 is not a JSON object"),
    ("{not json", "line 1 is not valid JSON"),
    (json.dumps({"bench": "quality"}), "fails the record schema (no ['name', 'values', "
                                       "'protocol', 'machine', 'command', 'date'])"),
])
def test_a_bad_line_is_refused_with_its_number(tmp_path, line, problem):
    path = tmp_path / "records.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(StoreError, match=problem.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        Store(path).records()


@pytest.mark.parametrize("change, problem", [
    ({"origin": "guessed"}, "origin 'guessed' is none of measured, transcribed"),
    ({"values": {}}, "values is empty"),
    ({"settings_sha": None}, "settings_sha and settings_of go together"),
    ({"schema": 2}, "schema 2, this ganforge reads 1"),
    ({"command": ""}, "command must be a non-empty string"),
])
def test_records_that_break_the_schema_are_not_appended(tmp_path, change, problem):
    store = Store(tmp_path / "records.jsonl")
    with pytest.raises(StoreError, match=f"the new record fails the record schema "
                       f"\\({problem}\\)"):
        store.append(record(**change))
    assert not store.path.exists()


def test_unknown_keys_are_refused(tmp_path):
    path = tmp_path / "records.jsonl"
    values = {**dataclasses.asdict(record()), "vibes": 3}
    path.write_text(json.dumps(values) + "\n")
    with pytest.raises(StoreError, match=r"line 1 fails the record schema \(unknown keys "
                       r"\['vibes'\]\)"):
        Store(path).records()


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path):
    store = Store(tmp_path / "records.jsonl")
    first = store.append(record())
    with open(store.path, "ab") as fh:
        fh.write(b'{"bench": "quality", "na')  # a run killed mid-write
    assert store.records() == [first]
    second = store.append(record(values={"fid_ratio": 8.0}))
    assert store.records() == [first, second]
    assert store.path.read_bytes().count(b"\n") == 2


def test_bench_status_lists_stale_records_with_their_commands(tmp_path, capsys):
    store = Store(tmp_path / "records.jsonl")
    store.append(record(settings_sha="0123456789abcdef"))
    store.append(record())
    store.append(record(name="typical-dcgan", preset=None))
    assert main(["bench", "status", "--store", str(store.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{store.path}: 3 records, 2 current, 1 stale"
    assert [line.split() for line in out[1:3]] == [
        ["quality", "dcgan-mnist", "1", "current"], ["quality", "typical-dcgan", "1", "current"]]
    assert out[3].startswith("stale (an earlier form of the preset")
    assert out[4].split()[0:2] == ["quality", "dcgan-mnist"]
    assert out[4].endswith("python benchmarks/quality.py --presets dcgan-mnist")
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n")
    assert main(["bench", "status", "--store", str(path)]) == 2
    assert capsys.readouterr().err == (f"ganforge: error: '{path}' line 1 is not valid JSON; "
                                       "fix or delete that line\n")


def test_the_committed_store_is_valid_and_its_quality_runs_current_or_stale():
    store = Store(RECORDS)
    records = store.records()  # every line passes the schema
    # the quality run log, moved into the store with its line numbers when it was removed
    quality = [r for r in records if (r.source or "").startswith(RESULTS + "quality_runs.jsonl#")]
    assert [r.source for r in quality] == [f"{RESULTS}quality_runs.jsonl#L{n}"
                                           for n in range(1, 55)]
    stale = [r.name for r in quality if store.is_stale(r)]
    # a preset retuned since its quality runs leaves them stale: rerun them (quality.py
    # --skip-done) rather than change this count
    assert (len(quality) - len(stale), stale) == (51, ["hinge-sn-mnist"] * 3)
    assert {r.source.split("#")[0] for r in records if r.origin == "transcribed"} == {
        RESULTS + "gpu_check_h200.md", RESULTS + "kmnist_gpu_screen.md",
        "src/ganforge/configs/cgan-digits.toml"}
