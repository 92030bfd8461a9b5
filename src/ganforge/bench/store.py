"""One store of results: every measurement is one record, appended to a JSON Lines file.

A :class:`Record` says what was measured (``bench``, ``name``), the numbers (``values``), how
(``protocol``: budget, samples, reference set, evaluator and its sha, seed), where (``machine``:
CPU model, threads, load average before and after, GPU), with which code (``ganforge``: version
and commit), the ``command`` that made it, when, and — for a run of a preset — the
**fingerprint of the resolved settings it trained with** (:func:`settings_fingerprint`) and
what that fingerprint is of (``settings_of``: the preset and its ``--set`` overrides).

A record whose fingerprint no longer matches its preset as it resolves now is **stale**
(:meth:`Store.stale`): it is history, never the preset's current number, and its command says
how to refresh it. Numbers copied from a log with no raw measurement behind them are kept with
``origin = "transcribed"``; migrated ones name their ``source``.

The file is append-only: records are never rewritten (history stays), each line is written
whole and flushed, and a torn last line (a killed run) is ignored. A line that fails the
schema is refused with its line number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from ganforge.config import resolve
from ganforge.errors import ConfigError, GanforgeError
from ganforge.version import __version__

SCHEMA = 1
ORIGINS = ("measured", "transcribed")
# Sections of a resolved config that decide what a run trains.
TRAINED_SECTIONS = ("model", "loss", "optim", "train")
# train.* keys a benchmark sets per run (budget, seed, threads, device), and those that never
# change what is trained (when checkpoints are written: a resumed run is bit-identical).
PER_RUN_TRAIN_KEYS = ("seed", "minutes", "steps", "epochs", "threads", "device",
                      "checkpoint_minutes")


class StoreError(GanforgeError):
    """A record that fails the schema, or a store file that cannot be read."""


def settings_fingerprint(config: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over what a resolved config (``Config.to_dict()``, a run's
    ``config.json``) trains with: its model, loss, optimiser and training settings, less the
    keys a benchmark sets per run."""
    settings = {k: config[k] for k in TRAINED_SECTIONS}
    settings["train"] = {k: v for k, v in settings["train"].items()
                         if k not in PER_RUN_TRAIN_KEYS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def preset_fingerprint(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> Optional[str]:
    """The fingerprint of ``preset`` as it resolves now under ``overrides``; None when it no
    longer resolves (a preset since removed, an override it no longer takes)."""
    try:
        return settings_fingerprint(resolve(preset, overrides=list(overrides)).to_dict())
    except ConfigError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ARM boards say Hardware or Processor), else
    what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass  # not Linux: platform's name stands
    return platform.processor() or "unknown"


def machine(threads: Optional[int] = None, load_before: Optional[list[float]] = None
            ) -> dict[str, Any]:
    """Where a measurement is taken: CPU model, cores, threads, load averages, GPU."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads,
            "load_before": load_before, "load_after": list(os.getloadavg()), "gpu": None}


def ganforge_version() -> dict[str, Optional[str]]:
    """The version, and the git commit when ganforge runs from a checkout."""
    commit = None
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        commit = done.stdout.strip() or None if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None  # no git here: the version alone names the code
    return {"version": __version__, "commit": commit}


@dataclass
class Record:
    """One measurement (see the module docstring for what each field holds)."""

    bench: str
    name: str
    values: dict[str, Any]
    protocol: dict[str, Any]
    machine: dict[str, Any]
    command: str
    date: str
    settings_sha: Optional[str] = None
    settings_of: Optional[dict[str, Any]] = None
    ganforge: dict[str, Any] = field(default_factory=dict)
    origin: str = "measured"
    source: Optional[str] = None
    schema: int = SCHEMA

    @classmethod
    def now(cls, bench: str, name: str, values: dict[str, Any], protocol: dict[str, Any],
            command: str, machine_info: dict[str, Any], preset: Optional[str] = None,
            overrides: list[str] | tuple[str, ...] = (),
            trained: Optional[dict[str, Any]] = None) -> "Record":
        """A record of a measurement just made; ``trained`` is the run's saved config (its
        fingerprint is what the run trained with), else the preset's as it resolves now."""
        sha = None
        if preset is not None:
            sha = (settings_fingerprint(trained) if trained is not None
                   else preset_fingerprint(preset, overrides))
        return cls(bench, name, values, protocol, machine_info, command,
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), sha,
                   {"preset": preset, "overrides": list(overrides)} if preset else None,
                   ganforge_version())

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=False, allow_nan=False)

    @classmethod
    def from_dict(cls, values: Any, where: str) -> "Record":
        """Check ``values`` against the schema (``where`` names it in the error)."""
        if not isinstance(values, dict):
            raise StoreError(f"{where} is not a JSON object; fix or delete it")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        required = [n for n, f in names.items() if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        missing = [n for n in required if n not in values]
        if unknown or missing:
            what = (f"unknown keys {unknown}" if unknown else "") + (
                "; " if unknown and missing else "") + (f"no {missing}" if missing else "")
            raise StoreError(f"{where} fails the record schema ({what}); fix or delete it")
        record = cls(**values)
        problem = record.problem()
        if problem:
            raise StoreError(f"{where} fails the record schema ({problem}); fix or delete it")
        return record

    def problem(self) -> Optional[str]:
        """What breaks the schema's rules, or None."""
        if self.schema != SCHEMA:
            return f"schema {self.schema}, this ganforge reads {SCHEMA}"
        for key in ("bench", "name", "command", "date"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                return f"{key} must be a non-empty string"
        for key in ("values", "protocol", "machine", "ganforge"):
            if not isinstance(getattr(self, key), dict):
                return f"{key} must be an object"
        if not self.values:
            return "values is empty"
        if self.origin not in ORIGINS:
            return f"origin {self.origin!r} is none of {', '.join(ORIGINS)}"
        if (self.settings_of is None) != (self.settings_sha is None):
            return "settings_sha and settings_of go together"
        if self.settings_of is not None and not isinstance(self.settings_of.get("preset"), str):
            return "settings_of names no preset"
        return None


class Store:
    """An append-only JSON Lines file of records.

    Args:
        path: the file (created on the first append).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def records(self) -> list[Record]:
        """Every record, in the order written (a torn last line is skipped).

        Raises:
            StoreError: a line that is not a valid record (named by its number).
        """
        if not self.path.is_file():
            return []
        try:
            raw = self.path.read_bytes()
        except OSError as err:
            raise StoreError(f"cannot read results store '{self.path}' ({err.strerror}); "
                             "check the path") from None
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        out = []
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            where = f"'{self.path}' line {number}"
            try:
                values = json.loads(line)
            except ValueError:
                raise StoreError(f"{where} is not valid JSON; fix or delete that line") from None
            out.append(Record.from_dict(values, where))
        del tail  # a torn last line: written by a killed run, never complete
        return out

    def append(self, record: Record) -> Record:
        """Check ``record`` and append it as one line (flushed to the disk)."""
        Record.from_dict(dataclasses.asdict(record), "the new record")
        line = (record.to_json() + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return record

    def _drop_torn_tail(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # appending would glue onto the torn line
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    # ------------------------------------------------------------------ current or stale
    def is_stale(self, record: Record, cache: Optional[dict] = None) -> bool:
        """Whether ``record`` measured an earlier form of its preset (records of fixed code,
        such as a typical loop, never are)."""
        if record.settings_of is None:
            return False
        cache = {} if cache is None else cache
        key = (record.settings_of["preset"], tuple(record.settings_of.get("overrides") or ()))
        if key not in cache:
            cache[key] = preset_fingerprint(*key)
        return cache[key] != record.settings_sha

    def current(self, bench: Optional[str] = None) -> list[Record]:
        """The records that are not stale (of one benchmark when ``bench`` is given)."""
        cache: dict = {}
        return [r for r in self.records() if (bench is None or r.bench == bench)
                and not self.is_stale(r, cache)]

    def stale(self, bench: Optional[str] = None) -> list[Record]:
        """The records of an earlier form of their preset: history, with the command that
        refreshes each."""
        cache: dict = {}
        return [r for r in self.records() if (bench is None or r.bench == bench)
                and self.is_stale(r, cache)]
