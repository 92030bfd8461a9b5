"""The quality benchmark's runs as records of the results store, and back.

One run of ``quality.py`` (a preset or a typical loop trained once, its timed checkpoints and
final G scored) is one :class:`ganforge.bench.Record` of bench ``quality``:

* ``values``: the run's numbers (``steps``, ``train_s``, ``images_per_s``, ``wall_s``,
  ``score_s``, ...) and each scored point's under ``"<minutes>min/<key>"`` (``"5min/fid"``,
  ``"15min/per_class"``); a many-modes run's metric value and details as they are;
* ``protocol``: ``name`` (``quality-v2``), the kind of run, seed, budget, threads, whether it is
  conditional, the typical loop it is held to, the dataset, the scorer (evaluator and its
  sha256, reference and its pixels' sha256, sample counts), the scored points (minutes and
  checkpoint, in order) and the run folder;
* ``machine``: the CPU model, threads and load average before and after training;
* a preset run's ``settings_sha`` (the fingerprint of its run's ``config.json``) and
  ``settings_of`` (the preset and the run's ``--set`` overrides); a typical loop is fixed code
  (``baseline.py``) and has neither, so it is never stale.

:func:`to_record` and :func:`from_record` are inverses on everything the tables read, so the
tables built from the store are the tables built from the run log it replaced
(``benchmarks/migrate_to_store.py`` moved that log with :func:`to_record`).
"""

from __future__ import annotations

from typing import Any, Optional

from ganforge.bench import Record, Store

PROTOCOL = "quality-v2"
KINDS = ("preset", "typical", "many-modes")
# A run's own numbers; everything else numeric at the top of a run is a many-modes metric's.
RUN_VALUES = ("steps", "train_s", "images_per_s", "images_per_s_last_window", "wall_s",
              "score_s")
SCORING = ("evaluator", "evaluator_sha256", "evaluator_recipe", "reference", "reference_n",
           "reference_pixels_sha256", "n_samples", "sample_seed")
RUN_PROTOCOL = ("kind", "seed", "budget_minutes", "threads", "conditional", "compare_with",
                "dataset", *SCORING, "run_dir", "metric")
# Keys of a run that the record holds elsewhere (machine, settings, command, date).
ELSEWHERE = ("protocol", "name", "points", "cpu_model", "loadavg_before", "loadavg_after",
             "settings_sha", "extra_overrides", "command", "date_utc")
UNKNOWN_CODE = {"version": "unknown", "commit": "unknown"}


def point_prefix(minutes: float) -> str:
    """The values' prefix of the point scored at ``minutes``: 5 -> ``"5min/"``."""
    return f"{minutes:g}min/"


def iso_date(date_utc: str) -> str:
    """``"2026-11-30 06:45"`` (the run log's UTC minute) -> ``"2026-11-30T06:45Z"``."""
    return date_utc.replace(" ", "T") + "Z" if " " in date_utc else date_utc


def to_record(run: dict[str, Any], source: Optional[str] = None,
              code: Optional[dict[str, Any]] = None, cores: Any = "unknown") -> Record:
    """The store's record of a run (a dict as ``quality.py`` builds it).

    Args:
        source: where a migrated run was read (``file#Lline``); None for a run just made.
        code: the ganforge version and commit it ran (unknown for migrated runs).
        cores: the machine's cores (the run log never said).
    """
    values = {k: run[k] for k in RUN_VALUES if k in run}
    protocol: dict[str, Any] = {"name": run["protocol"],
                                **{k: run[k] for k in RUN_PROTOCOL if k in run}}
    for key, value in run.items():  # a many-modes run's metric and its numeric details
        if key not in RUN_VALUES and key not in RUN_PROTOCOL and key not in ELSEWHERE:
            values[key] = value
    if "points" in run:
        protocol["points"] = [{"minutes": p["minutes"], "checkpoint": p["checkpoint"]}
                              for p in run["points"]]
        for p in run["points"]:
            values.update({point_prefix(p["minutes"]) + k: v for k, v in p.items()
                           if k not in ("minutes", "checkpoint")})
    machine = {"cpu": run.get("cpu_model") or "unknown", "cores": cores,
               "threads": run["threads"], "load_before": run["loadavg_before"],
               "load_after": run["loadavg_after"], "gpu": None}
    preset = run["kind"] != "typical"
    return Record(
        bench="quality", name=run["name"], values=values, protocol=protocol, machine=machine,
        command=run.get("command") or "unknown", date=iso_date(run.get("date_utc") or "unknown"),
        settings_sha=(run.get("settings_sha") or "unrecorded") if preset else None,
        settings_of={"preset": run["name"], "overrides": list(run.get("extra_overrides", []))}
        if preset else None,
        ganforge=dict(code or UNKNOWN_CODE), source=source)


def from_record(record: Record) -> dict[str, Any]:
    """The run a record holds, in the form the tables read (``quality_report``)."""
    protocol, values = record.protocol, record.values
    run: dict[str, Any] = {"protocol": protocol["name"], "name": record.name,
                           **{k: protocol[k] for k in RUN_PROTOCOL if k in protocol}}
    prefixes = [point_prefix(p["minutes"]) for p in protocol.get("points", [])]
    run.update({k: v for k, v in values.items() if not k.startswith(tuple(prefixes))})
    if "points" in protocol:
        run["points"] = [{**p, **{k[len(prefix):]: v for k, v in values.items()
                                  if k.startswith(prefix)}}
                         for p, prefix in zip(protocol["points"], prefixes)]
    run.update(cpu_model=record.machine["cpu"], loadavg_before=record.machine["load_before"],
               loadavg_after=record.machine["load_after"],
               settings_sha=record.settings_sha or "",
               extra_overrides=list((record.settings_of or {}).get("overrides") or []),
               command=record.command, date_utc=record.date)
    return run


def load_runs(store: Store, protocol: str = PROTOCOL) -> list[dict[str, Any]]:
    """The runs of ``protocol`` in the store, in the order written, each with ``current``:
    whether it trained with its preset as the preset resolves now (:meth:`Store.is_stale`)."""
    cache: dict = {}
    runs = []
    for record in store.records():
        if record.bench == "quality" and record.protocol.get("name") == protocol and \
                record.protocol.get("kind") in KINDS:
            run = from_record(record)
            run["current"] = not store.is_stale(record, cache)
            runs.append(run)
    return runs
