"""Move every result written before the results store into it: ``results/records.jsonl``.

Run from the repository root (idempotent: a second run adds nothing)::

    .venv/bin/python benchmarks/migrate_to_store.py [--repo DIR] [--store FILE] [--dry-run]

One :class:`ganforge.bench.Record` per measurement, appended with ``Store.append`` in the order
of the readers below and of each file. What each record holds:

* ``source``: the file and where in it, ``benchmarks/results/speed_cpu.json#presets[3]``,
  ``benchmarks/results/sweeps/cgan-mnist.jsonl#L4``. The quality run logs
  (``quality_runs.jsonl``, ``quality_runs_v1.jsonl``) were removed once migrated, by commit
  5599377 (:data:`REMOVED_BY`); their sources' line numbers are those of the files in its parent
  (``git show 5599377^:benchmarks/results/quality_runs.jsonl``). The other files stay: their
  pages are built from them, and their benchmarks still write them.
* ``values``: the numbers exactly as the file has them, nested keys joined by ``/``; a quality
  run's scored points under ``"<minutes>min/<key>"``. JSON has no NaN: the NaN per-class
  accuracies of KMNIST's five-class runs (classes never drawn) are null.
* ``date``, ``command``, ``machine``, ``protocol`` and ganforge's commit as the file gives them,
  else ``"unknown"`` (sweeps, efficiency and the v1 quality runs kept no date; no file kept
  ganforge's version). A date in ``YYYY-MM-DD HH:MM`` (the quality run log's UTC minute)
  becomes ISO 8601; ``metrics_speed.json``'s local time is kept as written. A file that
  merged several commands' results gives each entry the command that ran it when the file
  says which (faces, KMNIST, quality v1), and that command's date and machine when it has them.
* ``settings_sha``: a quality run's own fingerprint as logged (commit 251ebda carried the log
  over to the config's component form with ``benchmarks/migrate_settings_sha.py``, a one-off
  rewrite of the log, removed with the log). A sweep or KMNIST run's is computed from the
  trained settings it recorded, carried to the current form when the run trained with its
  preset as the preset resolves now under the run's overrides (every setting of the current
  form equal; the rest were settings of components the run did not choose), else the recorded
  settings' own fingerprint, which no preset resolves to: stale. Runs of a preset whose file recorded no
  settings (speed, efficiency, throughput, parzen, faces, conditions, quality v1, transcribed
  rows) get ``"unrecorded"``: always stale, history with the command that refreshes it. Fixed
  code (typical loops, evaluators, floors, the matmul peak, metric speed) has no
  ``settings_of`` and is never stale.
* ``origin = "transcribed"`` for numbers copied from printed lines with no raw file behind them:
  the extra presets and the step profile of ``gpu_check_h200.md`` (the throughput command ran
  into its time limit before writing its JSON; the profiler printed), the KMNIST settings
  screened on a GPU (``kmnist_gpu_screen.md``: its results folders stayed on the GPU
  machine) and the quick start's two seeds (a comment in ``configs/cgan-digits.toml`` and the
  README's sentence beside it).

Not migrated: summaries computed from these records (the quality and sweep pages, speed's
defaults-vs-baseline table and targets, throughput's overhead table: a ratio of two rows); the
person's readings of ``evaluator_reading*_labels.json`` (the input of that benchmark) and its
list of disputed samples; artifacts (grids, plots: their paths stay in ``protocol``);
evaluator training logs; the CUDA test counts of ``gpu_check_h200.md``. Not known, so said as
unknown: the command of KMNIST's ``g16`` run (a reused run; no command in the file names a
``g16`` variant) and the date and machine of that file's runs made by commands other than its
last.

A record is skipped when one read from the same place with the same values is already in the
store (a file read again, or rewritten with earlier results merged in where they were).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import migrate_formats as mf  # noqa: E402  (benchmarks/migrate_formats.py)
import migrate_transcribed as mt  # noqa: E402
import quality_store  # noqa: E402
from ganforge.bench import Record, Store, settings_fingerprint  # noqa: E402
from ganforge.bench.store import PER_RUN_TRAIN_KEYS, TRAINED_SECTIONS  # noqa: E402
from ganforge.config import resolve  # noqa: E402
from ganforge.errors import ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REMOVED_BY = "5599377"  # the commit that removed the quality run logs once migrated
MISSING = object()


def carried_fingerprint(trained: dict[str, Any], preset: str, overrides: list[str]) -> str:
    """The fingerprint of the settings a run recorded (its config's model, loss, optim and
    train sections), in the config's current form when the run trained with ``preset`` as it
    resolves now under ``overrides``: a config once held every setting of every component,
    now only the chosen ones'."""
    recorded = settings_fingerprint(trained)
    try:
        now = resolve(preset, overrides=list(overrides)).to_dict()
    except ConfigError:
        return recorded  # the preset or an override is gone: stale
    same = all(trained.get(section, {}).get(key, MISSING) == value
               for section in TRAINED_SECTIONS for key, value in now[section].items()
               if not (section == "train" and key in PER_RUN_TRAIN_KEYS))
    return settings_fingerprint(now) if same else recorded


def one(commands: list[str], test: Any) -> Optional[str]:
    """The one command ``test`` picks, else None (unknown)."""
    hits = [c for c in commands if test(mf.flags(c))]
    return hits[0] if len(hits) == 1 else None


def lines(repo: Path, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(source, entry)`` per line of a JSON Lines results file."""
    path = repo / mf.RESULTS / name
    if path.is_file():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                yield f"{(mf.RESULTS / name).as_posix()}#L{number}", json.loads(line)


# ----------------------------------------------------------------------------- quality

def quality(repo: Path) -> Iterator[Record]:
    """The quality run log (protocol v2), as ``quality.py`` now writes its runs."""
    for source, run in lines(repo, "quality_runs.jsonl"):
        yield quality_store.to_record(run, source=source)


def quality_v1(repo: Path) -> Iterator[Record]:
    """Protocol v1's runs: final G only, recipe-v1 evaluator, two runs side by side. The run
    log kept no command, date or machine; its page (``quality_cpu_v1.*``) lists the commands
    (each run's is the one whose presets, seeds, minutes and threads it has), the machine's
    CPU and the commit it was measured at."""
    page, where = mf.load(repo, "quality_cpu_v1.json")
    md = repo / mf.RESULTS / "quality_cpu_v1.md"
    commit = re.search(r"as of commit ([0-9a-f]{7,40})", md.read_text()) if md.is_file() else None
    code = {"version": mf.UNKNOWN, "commit": commit.group(1) if commit else mf.UNKNOWN}
    commands = (page or {}).get("command", [])
    cpu = (page or {}).get("machine", {}).get("cpu_model", mf.UNKNOWN)
    for source, run in lines(repo, "quality_runs_v1.jsonl"):
        values, protocol = mf.split(run, skip=("preset",))
        command = one(commands, lambda f: run["preset"] in f.get("presets", []) and
                      str(run["seed"]) in f.get("seeds", []) and
                      float(f["minutes"][0]) == run["minutes"] and
                      int(f["threads"][0]) == run["threads"])
        machine = {"cpu": cpu, "cores": mf.UNKNOWN, "threads": run["threads"],
                   "load_before": None, "load_after": None, "gpu": None}
        yield mf.make("quality", run["preset"], values, {"name": "quality-v1", **protocol},
                      machine, command, None, source, mf.unrecorded(run["preset"]), code)
    if page is not None:
        machine = mf.machine_of(page["machine"])
        yield mf.make("quality", "floor", {"fid": page["fid_floor"]},
                      {"name": "quality-v1", "kind": "floor"}, machine, None, None,
                      f"{where}#fid_floor", mf.FIXED, mf.code_of(page["machine"]))


def quality_floors(repo: Path) -> Iterator[Record]:
    """Protocol v2's real-data floor, scored by every rebuild of a machine's page."""
    for path in sorted((repo / mf.RESULTS).glob("quality_cpu_*.json")):
        if path.stem.endswith(("_v1", "_quick")):
            continue
        page, where = mf.load(repo, path.name)
        values, protocol = mf.split(page["floor"], keep=mf.KEEP | {"n"})
        yield mf.make("quality", "floor", values,
                      {"name": page["protocol"]["name"], "kind": "floor", **page["scorer"],
                       **protocol}, mf.machine_of(page["machine"]), page["summary_command"],
                      quality_store.iso_date(page["date_utc"]), f"{where}#floor", mf.FIXED,
                      mf.code_of(page["machine"]))


# ----------------------------------------------------------------------------- sweeps, KMNIST

def sweeps(repo: Path) -> Iterator[Record]:
    """The hand sweeps' logs (``results/sweeps/*.jsonl``, written by the former ``sweep.py``;
    a sweep is now ``ganforge tune --sampler grid``): one run per variant of a preset, with the
    settings it trained."""
    for path in sorted((repo / mf.RESULTS / "sweeps").glob("*.jsonl")):
        for source, run in lines(repo, f"sweeps/{path.name}"):
            values, protocol = mf.split(run, keep=mf.KEEP | {"variant"},
                                        skip=("preset", "resolved", "command", "cpu_model",
                                              "load_before", "load_after"))
            settings = (mf.unrecorded(run["preset"], run["overrides"]) if "resolved" not in run
                        else (carried_fingerprint(run["resolved"], run["preset"],
                                                  run["overrides"]),
                              {"preset": run["preset"], "overrides": list(run["overrides"])}))
            machine = {"cpu": run["cpu_model"], "cores": mf.UNKNOWN, "threads": run["threads"],
                       "load_before": run["load_before"], "load_after": run["load_after"],
                       "gpu": None}
            yield mf.make("sweep", f"{run['preset']}:{run['variant']}", values, protocol,
                          machine, run["command"], None, source, settings)


def kmnist(repo: Path) -> Iterator[Record]:
    """``kmnist_acgan.py``: seed 000's ACGAN, its levers, five classes, the tuned preset's
    variants and seeds (the file merges several commands: each run gets the one that ran it,
    and the file's date and machine only when that is the file's last command), then the
    real characters' floor and the evaluator's ceiling."""
    data, where = mf.load(repo, "kmnist_acgan.json")
    if data is None:
        return
    for part, runs in data["runs"].items():
        for i, run in enumerate(runs):
            command = one(data["commands"], lambda f: part in f.get("parts", []) and (
                part != "variants" or any(v.startswith(f"{run['name']}:")
                                          for v in f.get("variant", []))))
            last = command == data["command"]
            values, protocol = mf.split(run, keep=mf.KEEP | {"reused"},
                                        skip=("preset", "resolved", "load_before",
                                              "load_after"))
            machine = mf.machine_of(data["machine"] if last else None, run["load_before"],
                                    run["load_after"])
            settings = (carried_fingerprint(run["resolved"], run["preset"], run["overrides"]),
                        {"preset": run["preset"], "overrides": list(run["overrides"])})
            yield mf.make("kmnist", f"{run['preset']}:{run['name']}", values,
                          {"part": part, **protocol, "scoring": data["scoring"]}, machine,
                          command, data["date_utc"] if last else None,
                          f"{where}#runs.{part}[{i}]", settings,
                          mf.code_of(data["machine"] if last else None))
    values, protocol = mf.split({**data["floor"], "ceiling": data["scoring"]["ceiling"],
                                 "ceiling_per_class": data["scoring"]["ceiling_per_class"]})
    yield mf.make("kmnist", "real KMNIST test characters (floor, ceiling)", values,
                  {**protocol, "scoring": data["scoring"]}, mf.machine_of(data["machine"]),
                  data["command"], data["date_utc"], f"{where}#floor", mf.FIXED,
                  mf.code_of(data["machine"]))


# ----------------------------------------------------------------------------- the migration

READERS = (quality, quality_v1, quality_floors, sweeps, kmnist, mf.speed, mf.efficiency,
           mf.metrics_speed, mf.condition, mf.evaluators, mf.evaluator_reading, mf.parzen,
           mf.faces, mf.throughput, mt.gpu_check, mt.kmnist_gpu_screen,
           mt.quick_start)


def identity(record: Record) -> tuple[Optional[str], str]:
    """What makes two records one: where they were read and their numbers (a file rewritten
    by its benchmark has new numbers at the same places; one rewritten with earlier results
    merged in keeps theirs)."""
    return record.source, json.dumps(record.values, sort_keys=True)


def migrate(repo: Path, store: Store, dry_run: bool = False) -> list[Record]:
    """Append every result under ``repo`` that ``store`` does not hold yet; returns them."""
    held = {identity(r) for r in store.records()}
    added = []
    for reader in READERS:
        for record in reader(repo):
            if identity(record) in held:
                continue
            held.add(identity(record))
            added.append(record if dry_run else store.append(record))
    return added


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, default=REPO, help="the repository (default: this one)")
    p.add_argument("--store", type=Path, help="default: REPO/benchmarks/results/records.jsonl")
    p.add_argument("--dry-run", action="store_true", help="count, append nothing")
    args = p.parse_args(argv)
    store = Store(args.store or args.repo / mf.RESULTS / "records.jsonl")
    added = migrate(args.repo, store, args.dry_run)
    counts: dict[tuple[str, str], int] = {}
    for r in added:
        counts[(r.bench, r.origin)] = counts.get((r.bench, r.origin), 0) + 1
    print(f"{len(added)} records {'to add' if args.dry_run else 'added'} to {store.path}" +
          "".join(f"\n  {b:18s} {o:12s} {n}" for (b, o), n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
