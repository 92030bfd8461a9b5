"""What a study leaves in its folder besides the runs: the best settings as a preset
(``best.toml``), the study page (``study.html``, :mod:`ganforge.tune.page`) and one results
store record per completed trial (``records.jsonl`` by default).

``best.toml`` is ``base = "<preset>"`` plus the best trial's diff — its ``--set`` overrides,
its searched values and the budget it was tuned at — with the study's command in a comment;
``ganforge train --config STUDY_DIR/best.toml`` trains it, and it resolves to exactly the
settings the best trial trained with. Every worker rewrites both files when it ends (each write
atomic), so the last one to end leaves them complete.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.bench.store import Record, Store, machine
from ganforge.config import resolve
from ganforge.tune.job import BEST_FILE, PAGE_FILE, TuneJob
from ganforge.tune.page import study_page
from ganforge.tune.study import FIXED, SEARCHED, VALUES, best_trial, file_lock

if TYPE_CHECKING:
    import optuna

BENCH = "tune"  # the results store's name for these records


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------- the results store
def record_trial(job: TuneJob, number: int, values: list[float], searched: list[str],
                 trained: dict[str, Any]) -> Record:
    """Append the record of completed trial ``number`` to the job's results store.

    Args:
        values: each seed's score.
        searched: the trial's values as overrides.
        trained: the config a run of the trial saved (its fingerprint is what the trial
            trained with).
    """
    mean = sum(values) / len(values)
    record = Record.now(
        BENCH, f"{job.study_name}#{number}", {job.metric: mean, "per_seed": values},
        {**job.protocol(list(range(job.seeds))), "trial": number}, job.command(),
        machine(trained.get("train", {}).get("threads")), preset=job.preset,
        overrides=[*job.fixed, *searched], trained=trained)
    store = Store(job.store)
    # Workers of one machine append to one file: one line at a time.
    with file_lock(store.path.with_name(store.path.name + ".lock")):
        return store.append(record)


# ----------------------------------------------------------------------- the best preset
def best_overrides(job: TuneJob, trial: "optuna.trial.FrozenTrial") -> list[str]:
    """What the trial trained with besides the preset, less what only measures it (seed,
    scoring): its ``--set`` overrides, the budget, its searched values."""
    return [*trial.user_attrs.get(FIXED, []), job.budget.override,
            *trial.user_attrs.get(SEARCHED, [])]


def toml_value(value: Any) -> str:
    """``value`` in TOML (None as "none", which unsets an optional key)."""
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def _lookup(values: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        values = values[part]
    return values


def preset_text(job: TuneJob, trial: "optuna.trial.FrozenTrial") -> str:
    """``best.toml``'s text for ``trial``: the base preset and the diff, typed as resolved."""
    overrides = best_overrides(job, trial)
    resolved = resolve(job.preset, overrides=overrides).to_dict()
    keys = list(dict.fromkeys(o.partition("=")[0].strip() for o in overrides))
    # A budget given replaces the preset's: the keys it leaves out are unset here too.
    keys += [f"train.{k}" for k in ("steps", "epochs", "minutes") if f"train.{k}" not in keys]
    tables: dict[str, list[str]] = {}
    for key in keys:
        table, _, leaf = key.rpartition(".")
        tables.setdefault(table, []).append(f"{leaf} = {toml_value(_lookup(resolved, key))}")
    values = trial.user_attrs.get(VALUES, [])
    lines = [f"# The best settings of ganforge tune study '{job.study_name}': trial "
             f"{trial.number}, {job.metric} {trial.value:.6g} (mean of seeds "
             f"{', '.join(f'{v:.6g}' for v in values)}) at {job.budget.describe()} a run.",
             f"# Made by: {job.command()}",
             f"# Train it: ganforge train --config {Path(job.out) / BEST_FILE}",
             f'base = "{job.preset}"', *tables.pop("", [])]
    for table, entries in tables.items():
        lines += ["", f"[{table}]", *entries]
    return "\n".join(lines) + "\n"


def write_outputs(job: TuneJob, study: "optuna.Study") -> list[Path]:
    """Rewrite ``best.toml`` (once a trial completed) and ``study.html``; returns them."""
    written = []
    best = best_trial(study)
    if best is not None:
        path = job.folder / BEST_FILE
        write_atomic(path, preset_text(job, best))
        written.append(path)
    page = job.folder / PAGE_FILE
    write_atomic(page, study_page(job, study))
    written.append(page)
    return written
