"""A benchmark spec: one TOML file saying what :mod:`ganforge.bench.protocol` runs and records.

A spec names the store's benchmark (``bench``) and protocol, the seeds, the threads, one budget
(``[budget]``: ``minutes``, ``steps`` or ``epochs``, with an optional curve of minutes at which
checkpoints are scored as well), the overrides every run trains with (``set``), how a checkpoint
is scored (``[score]``: metrics, evaluator, samples, reference set and the real-data floor) and
the runs (``[[run]]``: a preset, or a typical loop of :mod:`ganforge.bench.typical`).

``{data_root}`` in any string is replaced by ``ganforge bench --data-root``. Everything is checked
before the first run: an unknown key (with the closest one), a preset that does not resolve with
the spec's overrides, an unknown typical loop, metric or budget. :func:`plan` turns a spec into
jobs — one training run each — in the order they run.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ganforge.config import resolve
from ganforge.errors import ConfigError, unknown_name

TOP = {"bench", "protocol", "about", "threads", "device", "seeds", "set", "budget", "score",
       "run"}
BUDGET = {"minutes", "steps", "epochs", "curve", "curve_seeds"}
SCORE = {"metrics", "conditional", "unconditional", "evaluator", "samples", "sample_seed",
         "reference", "reference_n", "floor", "settings"}
RUN = {"name", "preset", "typical", "compare_with", "set", "metrics", "reference", "final_only"}
DATASET = {"dataset", "split", "splits", "root", "skip", "n"}


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: {unknown_name('key', key, sorted(allowed))}")


@dataclass
class Source:
    """Real images named in a spec: a registered dataset's splits (concatenated), or a file.

    Attributes:
        dataset: registry name (``digits``, ``mnist``), or None with ``path``.
        splits: the splits joined in order.
        root: the data root (``{data_root}`` filled in).
        skip: leave out the first ``skip`` images (a reference and a floor cut from one split).
        n: then the first ``n`` images only (None: all).
        path: an npz or image folder instead of a dataset.
    """

    dataset: Optional[str] = None
    splits: tuple[str, ...] = ("test",)
    root: Optional[str] = None
    skip: int = 0
    n: Optional[int] = None
    path: Optional[str] = None

    @classmethod
    def parse(cls, value: Any, where: str) -> Optional["Source"]:
        if value is None or value == "own":
            return None
        if isinstance(value, str):
            return cls(path=value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table {{dataset = ...}}, a file, or \"own\"")
        _check_keys(value, DATASET, where)
        if "dataset" not in value:
            raise ConfigError(f"{where} names no dataset; add dataset = \"NAME\"")
        splits = value.get("splits", [value.get("split", "test")])
        return cls(value["dataset"], tuple(splits), value.get("root"), int(value.get("skip", 0)),
                   value.get("n"))


@dataclass
class Score:
    """How a checkpoint is scored (``[score]``)."""

    metrics: list[str]
    conditional: list[str] = field(default_factory=list)
    unconditional: list[str] = field(default_factory=list)
    evaluator: Optional[str] = None
    samples: int = 10_000
    sample_seed: int = 0
    reference: Optional[Source] = None
    reference_n: Optional[int] = None
    floor: Optional[Source] = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # each metric's own

    def metrics_for(self, conditional: bool) -> list[str]:
        return self.metrics + (self.conditional if conditional else self.unconditional)


@dataclass
class RunSpec:
    """One ``[[run]]``: a preset or a typical loop, with its own overrides and scoring."""

    name: str
    preset: Optional[str] = None
    typical: Optional[str] = None
    compare_with: Optional[str] = None
    set: list[str] = field(default_factory=list)
    metrics: Optional[list[str]] = None
    reference: Any = "spec"  # "spec": the spec's; None: the run's own data; a Source
    final_only: bool = False

    @property
    def kind(self) -> str:
        return "typical" if self.typical else "preset"


@dataclass
class Spec:
    """A parsed, checked spec file."""

    path: Path
    bench: str
    protocol: str
    about: str
    threads: int
    device: str
    seeds: list[int]
    overrides: list[str]
    budget: dict[str, Any]
    score: Optional[Score]
    runs: list[RunSpec]

    @property
    def curve(self) -> list[float]:
        return sorted(self.budget.get("curve", []))


@dataclass
class Job:
    """One training run of a spec: a run at one seed and budget, scored at ``timed`` minutes
    (checkpoints below the budget) and at its end."""

    run: RunSpec
    seed: int
    budget: dict[str, Any]  # {"minutes": 5} or {"steps": 200} or {"epochs": 1}
    timed: list[float] = field(default_factory=list)


def _fill(value: Any, data_root: Optional[str], where: str) -> Any:
    if isinstance(value, str) and "{data_root}" in value:
        if data_root is None:
            raise ConfigError(f"{where} uses {{data_root}}; pass --data-root FOLDER (the folder "
                              "holding the datasets, e.g. MNIST/raw)")
        return value.replace("{data_root}", str(data_root))
    if isinstance(value, list):
        return [_fill(v, data_root, where) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, data_root, where) for k, v in value.items()}
    return value


def load_spec(path: str | Path, data_root: Optional[str] = None) -> Spec:
    """Read and check the spec at ``path``.

    Raises:
        ConfigError: a missing or unreadable file, bad TOML, an unknown key, a preset that does
            not resolve, an unknown typical loop or metric, a budget of none or two kinds.
    """
    from ganforge.bench.typical import TYPICAL

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark spec '{path}' not found; pass a TOML file such as "
                          "benchmarks/specs/quality.toml")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"benchmark spec '{path}' is not valid TOML ({err}); fix it") from None
    where = f"spec '{path.name}'"
    raw = _fill(raw, data_root, where)
    _check_keys(raw, TOP, where)
    for key in ("bench", "protocol"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where} needs {key} = \"NAME\" (the store's {key} name)")
    budget = raw.get("budget", {})
    _check_keys(budget, BUDGET, f"{where} [budget]")
    kinds = [k for k in ("minutes", "steps", "epochs") if k in budget]
    if len(kinds) != 1:
        raise ConfigError(f"{where} [budget] needs exactly one of minutes, steps, epochs "
                          f"(has {', '.join(kinds) or 'none'})")
    if budget.get("epochs") == "preset" and any(r.get("typical") for r in raw.get("run", [])):
        raise ConfigError(f"{where} [budget] epochs = \"preset\" trains each preset for its "
                          "own epochs; a typical loop needs minutes or steps")
    if isinstance(budget[kinds[0]], str) and budget[kinds[0]] != "preset" or \
            budget[kinds[0]] == "preset" and kinds != ["epochs"]:
        raise ConfigError(f"{where} [budget] {kinds[0]} must be a number (or epochs = "
                          "\"preset\": each preset's own)")
    if budget.get("curve") and kinds != ["minutes"]:
        raise ConfigError(f"{where} [budget] curve needs a budget in minutes")
    score = _parse_score(raw.get("score"), where)
    runs = [_parse_run(r, i, where, TYPICAL) for i, r in enumerate(raw.get("run", []))]
    if not runs:
        raise ConfigError(f"{where} has no [[run]]; add one with preset = \"NAME\"")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two runs named "
                          f"'{next(n for n in names if names.count(n) > 1)}'; name each once")
    spec = Spec(path, raw["bench"], raw["protocol"], raw.get("about", ""),
                int(raw.get("threads", 2)), raw.get("device", "cpu"),
                [int(s) for s in raw.get("seeds", [0])], list(raw.get("set", [])), budget,
                score, runs)
    for run in runs:  # every preset resolves with what its runs add, before anything trains
        if run.preset:
            resolve(run.preset, overrides=spec.overrides + run.set)
    return spec


def _parse_score(table: Optional[dict[str, Any]], where: str) -> Optional[Score]:
    from ganforge.api import higher_is_better

    if table is None:
        return None
    _check_keys(table, SCORE, f"{where} [score]")
    score = Score(list(table.get("metrics", [])), list(table.get("conditional", [])),
                  list(table.get("unconditional", [])), table.get("evaluator"),
                  int(table.get("samples", 10_000)), int(table.get("sample_seed", 0)),
                  Source.parse(table.get("reference"), f"{where} [score] reference"),
                  table.get("reference_n"),
                  Source.parse(table.get("floor"), f"{where} [score] floor"),
                  dict(table.get("settings", {})))
    for metric in score.metrics + score.conditional + score.unconditional:
        higher_is_better(metric)  # an unknown metric: one line with the closest name
    return score


def _parse_run(table: dict[str, Any], index: int, where: str, typical: dict) -> RunSpec:
    here = f"{where} [[run]] {index + 1}"
    _check_keys(table, RUN, here)
    preset, loop = table.get("preset"), table.get("typical")
    if (preset is None) == (loop is None):
        raise ConfigError(f"{here} needs one of preset = \"NAME\" or typical = \"NAME\"")
    if loop is not None and loop not in typical:
        raise ConfigError(f"{here}: {unknown_name('typical loop', loop, list(typical))}")
    reference = table.get("reference", "spec")
    if reference != "spec":
        reference = Source.parse(reference, f"{here} reference")
    return RunSpec(table.get("name", preset or loop), preset, loop, table.get("compare_with"),
                   list(table.get("set", [])), table.get("metrics"), reference,
                   bool(table.get("final_only", False)))


def plan(spec: Spec, only: Optional[list[str]] = None) -> list[Job]:
    """The jobs of ``spec``, one training run each, run by run (``only``: these runs).

    With a curve, the ``curve_seeds`` (default: the first seed) train to its last point with
    checkpoints at the others; such a run also serves as that seed's result at the budget
    when the budget is a curve point (nothing in training depends on the total budget: its
    checkpoint at that minute is the state a run of that budget ends in).

    Raises:
        ConfigError: ``only`` names a run the spec does not have.
    """
    names = [r.name for r in spec.runs]
    for name in only or []:
        if name not in names:
            raise ConfigError(f"--only, spec '{spec.path.name}': "
                              f"{unknown_name('run', name, names)}")
    curve, jobs = spec.curve, []
    minutes = spec.budget.get("minutes")
    curve_seeds = spec.budget.get("curve_seeds", spec.seeds[:1]) if curve else []
    for run in spec.runs:
        if only and run.name not in only:
            continue
        for seed in sorted(set(spec.seeds) | set(curve_seeds)):
            on_curve = seed in curve_seeds and not run.final_only
            if on_curve:
                last = max(curve)
                jobs.append(Job(run, seed, {"minutes": last}, [m for m in curve if m < last]))
            if seed in spec.seeds and not (on_curve and minutes in curve):
                timed = [m for m in curve if m < minutes] if minutes and not run.final_only \
                    else []
                jobs.append(Job(run, seed, dict(
                    (k, v) for k, v in spec.budget.items() if k in ("minutes", "steps",
                                                                     "epochs")), timed))
    return jobs
