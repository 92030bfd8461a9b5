"""``ganforge bench SPEC``: run a spec's jobs one at a time, one record each into the store.

Each finished job is appended to the store at once, so an interrupted benchmark (Ctrl-C, a
killed machine) keeps every record it finished, and ``--skip-done`` goes on from there: it skips
a job whose current record the store already holds — same benchmark, protocol, run, seed,
budget and threads, scored alike (evaluator, samples, reference pixels), on the same kind of
CPU, trained with the settings its preset resolves to now. Timed results need an idle machine:
the runner says so, with the load average, when the machine is busy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

from ganforge.bench.protocol import Protocol, point_prefix
from ganforge.bench.spec import Job, Spec, plan
from ganforge.bench.store import Record, Store, cpu_model
from ganforge.errors import Interrupted

# A 1-minute load average above this, on top of the benchmark's own threads, means another
# process takes CPU time from the timed runs.
BUSY_LOAD = 0.5
SCORING_KEYS = ("evaluator_sha256", "n_samples", "reference_n", "reference_pixels_sha256",
                "sample_seed")


def busy_warning(load: Optional[float] = None) -> Optional[str]:
    """The line that warns of a busy machine, or None when it is idle."""
    load = os.getloadavg()[0] if load is None else load
    if load <= BUSY_LOAD:
        return None
    return (f"warning: the machine is busy (load average {load:.2f} over the last minute); "
            "timed results read slower than on an idle machine: stop other work and rerun "
            "what matters")


def same_job(record: Record, spec: Spec, job: Optional[Job], info: dict[str, Any],
             cpu: str) -> bool:
    """Whether ``record`` is a result of ``job`` (of the spec's floor when None) as this
    invocation would measure it."""
    p = record.protocol
    if record.bench != spec.bench or p.get("name") != spec.protocol or \
            record.machine.get("cpu") != cpu or any(p.get(k) != info.get(k)
                                                     for k in SCORING_KEYS if k in info):
        return False
    if job is None:
        return p.get("kind") == "floor"
    return (p.get("kind") == job.run.kind and record.name == job.run.name
            and p.get("seed") == job.seed and p.get("threads") == spec.threads
            and all(p.get(f"budget_{k}") == v for k, v in job.budget.items()))


def run_spec(spec: Spec, store: Store, runs: Path, command: str,
             only: Optional[list[str]] = None, skip_done: bool = False, dry_run: bool = False,
             log: Callable[[str], None] = print, evaluator: Any = None) -> list[Record]:
    """Run ``spec`` (its runs ``only``) and append a record per finished job to ``store``.

    Returns:
        The records appended (the floor first, when the spec has one and it is not done).

    Raises:
        Interrupted: a stop signal ended a job; the records before it are in the store.
    """
    jobs = plan(spec, only)
    cpu, cache = cpu_model(), {}
    held = store.records() if skip_done else []
    protocol = None if dry_run else Protocol(spec, runs, command, log, evaluator)

    def done(job: Optional[Job]) -> bool:
        if not skip_done:
            return False
        info = {} if protocol is None else (  # a dry run knows no scorer: runs match alone
            protocol.info if job is None else protocol.scoring(job.run)[1])
        return any(same_job(r, spec, job, info, cpu) and not store.is_stale(r, cache)
                   for r in held)

    todo = [j for j in jobs if not done(j)]
    log(f"{spec.path.name}: {len(jobs)} runs, {len(jobs) - len(todo)} already in "
        f"'{store.path}', {len(todo)} to run")
    if dry_run:
        for job in todo:
            log(f"  {job.run.name} seed {job.seed} {_budget(job)}")
        return []
    warning = busy_warning()
    if warning:
        log(warning)
    made: list[Record] = []
    try:
        if spec.score is not None and spec.score.floor is not None and not done(None):
            floor = protocol.floor()
            made.append(store.append(floor))
            log(f"floor: {_numbers(floor.values)}")
        for number, job in enumerate(todo, start=1):
            record = store.append(protocol.run_job(job))
            made.append(record)
            log(f"[{number}/{len(todo)}] {job.run.name} seed {job.seed} {_budget(job)}: "
                f"{_line(record)}")
    except (KeyboardInterrupt, Interrupted) as err:
        code = err.exit_code if isinstance(err, Interrupted) else 130
        raise Interrupted(f"benchmark stopped: the {len(made)} records it finished are in "
                          f"'{store.path}'; the same command with --skip-done goes on", code
                          ) from None
    return made


def _budget(job: Job) -> str:
    return ", ".join(f"{v:g} {k}" if not isinstance(v, str) else f"{v} {k}"
                     for k, v in job.budget.items())


def _numbers(values: dict[str, Any]) -> str:
    keys = ("fid", "precision", "recall", "acc", "worst", "entropy")
    return " ".join(f"{k}={values[k]:.3g}" for k in keys if isinstance(values.get(k), float))


def _line(record: Record) -> str:
    v, m = record.values, record.machine
    points = record.protocol.get("points") or []
    prefix = point_prefix(points[-1]["minutes"]) if points else None
    last = {k[len(prefix):]: x for k, x in v.items() if k.startswith(prefix)} if prefix else {}
    load = m.get("load_before") or [0.0]
    return (f"{v['steps']} steps, {v.get('images_per_s', 0):,.0f} img/s, load "
            f"{load[0]:.2f} -> {m['load_after'][0]:.2f}; {_numbers(last) or 'not scored'}")
