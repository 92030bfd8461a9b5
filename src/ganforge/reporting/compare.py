"""``ganforge compare RUN1 RUN2 ...``: runs side by side on one self-contained page.

The page holds: the runs with their status and the diagnostics that fired; the config keys whose
values differ (everything else is shared); a metric table — in-loop metrics (final and best),
``ganforge evaluate`` results, the label accuracy of conditional samples under the dataset's
evaluator (computed here from each run's newest checkpoint), speed and time — with, for runs
whose configs differ only in ``train.seed`` (and the run's name and folder) and whose seeds all
differ, one more column with the mean ± sample standard deviation over those seeds (runs that
share a seed, such as a run and a copy of it, are not independent samples: they stay side by
side and a line says why); per-class label accuracy; the final grids next to each other; and
the training curves, one plot per stat group, runs overlaid.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path
from typing import Any, Optional, Sequence

from ganforge.errors import GanforgeError
from ganforge.metrics.base import HIGHER_IS_BETTER
from ganforge.reporting import curves
from ganforge.reporting.diagnostics import read_findings
from ganforge.reporting.generated import confusion_view, find_evaluator, source_from_checkpoint
from ganforge.reporting.page import figure_uri, file_uri, render, write_page
from ganforge.run.folder import RunFolder

# Keys that make runs different *runs* without making them different *experiments*.
SEED_KEYS = ("train.seed", "run_name", "out_dir")
DEFAULT_OUT = "compare.html"


def labels_for(runs: Sequence[RunFolder]) -> list[str]:
    """Short unique names: folder names, with parent folders added until they differ."""
    depth = 1
    while True:
        names = ["/".join(r.path.resolve().parts[-depth:]) for r in runs]
        if len(set(names)) == len(names) or depth > 8:
            return names
        depth += 1


def config_differences(runs: Sequence[RunFolder]) -> list[dict[str, Any]]:
    """Flattened config keys whose values are not the same in every run."""
    flats = [r.flat_config for r in runs]
    keys = sorted(set().union(*flats))
    missing = object()
    rows = []
    for key in keys:
        values = [f.get(key, missing) for f in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append({"key": key, "cells": ["–" if v is missing else json.dumps(v)
                                                for v in values]})
    return rows


def seed_groups(runs: Sequence[RunFolder]) -> list[list[int]]:
    """Indices of runs whose configs are equal except for :data:`SEED_KEYS`, in run order."""
    groups: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        rest = {k: v for k, v in run.flat_config.items() if k not in SEED_KEYS}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(i)
    return list(groups.values())


def _seed(run: RunFolder) -> Any:
    return run.config.get("train", {}).get("seed")


def _listed(names: Sequence[str]) -> str:
    """"a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def averaged_groups(runs: Sequence[RunFolder], labels: Sequence[str]
                    ) -> tuple[list[list[int]], list[str]]:
    """The groups to average as seeds of one setting, and one line per set of runs that is not.

    A group of :func:`seed_groups` is averaged only when its seeds all differ: runs of one seed
    (a run and a copy of it, or a rerun) are not independent samples, and a mean ± std over them
    would claim a spread that was never measured. Those runs stay side by side.

    Returns:
        The averaged groups (two or more run indices each) and the lines that name the runs
        sharing a seed, e.g. "runs a and b share seed 0: shown side by side, not averaged".
    """
    averaged, notes = [], []
    for group in seed_groups(runs):
        if len(group) < 2:
            continue
        seeds = [json.dumps(_seed(runs[i])) for i in group]
        shared = [s for s in dict.fromkeys(seeds) if seeds.count(s) > 1]
        if not shared:
            averaged.append(group)
        for seed in shared:
            names = [labels[i] for i, s in zip(group, seeds) if s == seed]
            notes.append(f"runs {_listed(names)} share seed {seed}: shown side by side, "
                         "not averaged")
    return averaged, notes


def mean_std(values: Sequence[Optional[float]]) -> Optional[tuple[float, float, int]]:
    """(mean, sample std, n) of the finite values; None with fewer than two."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(finite) < 2:
        return None
    return statistics.fmean(finite), statistics.stdev(finite), len(finite)


@dataclasses.dataclass
class MetricRow:
    name: str
    values: list[Optional[float]]
    higher: Optional[bool] = None  # whether larger is better, when that is known

    @property
    def best_index(self) -> Optional[int]:
        finite = [(v, i) for i, v in enumerate(self.values) if v is not None and math.isfinite(v)]
        if self.higher is None or len(finite) < 2:
            return None
        value, index = (max if self.higher else min)(finite)
        return index if [v for v, _ in finite].count(value) == 1 else None  # a tie marks none


def _evaluator_key(info: Optional[dict[str, Any]]) -> Optional[str]:
    """"name vR sha" of an evaluator (a confusion view's ``evaluator_info``), or None."""
    if not info:
        return None
    recipe = f" v{info['recipe']}" if info.get("recipe") is not None else ""
    return f"{info['name']}{recipe} {info.get('sha', '')}".strip()


def _protocol_key(result: dict[str, Any]) -> Optional[str]:
    """The same "name vR sha" for a ``metrics.json`` result, from its protocol."""
    p = result.get("protocol") or {}
    if not p.get("extractor"):
        return None
    return _evaluator_key({"name": p["extractor"], "recipe": p.get("extractor_recipe"),
                           "sha": str(p.get("extractor_sha256", ""))[:8]})


def evaluator_flags(runs: Sequence[RunFolder], labels: Sequence[str],
                    label_acc: Sequence[Optional[Any]]) -> list[str]:
    """One line per number that the compared runs got from different evaluators (or evaluator
    versions): those values are not comparable."""
    flags = []
    checks = [("label accuracy (this page's samples)",
               [None if v is None else _evaluator_key(v.evaluator_info) for v in label_acc])]
    for name in sorted({n for r in runs for n in r.evaluations}):
        checks.append((f"evaluate: {name}", [_protocol_key(r.evaluations[name])
                                             if name in r.evaluations else None for r in runs]))
    for what, keys in checks:
        if len({k for k in keys if k is not None}) > 1:
            who = "; ".join(f"{lab}: {k}" for lab, k in zip(labels, keys) if k is not None)
            flags.append(f"{what} was scored by different evaluators ({who}): not comparable; "
                         "re-score every run with the same evaluator (`ganforge evaluate RUN "
                         "--evaluator NAME`)")
    return flags


def metric_rows(runs: Sequence[RunFolder], label_acc: Sequence[Optional[Any]],
                flagged: Sequence[str] = ()) -> list[MetricRow]:
    """One row per number any run has; a run without it shows a dash. Rows named in
    ``flagged`` (scored by different evaluators) mark no best value."""
    rows: list[MetricRow] = []
    if any(v is not None for v in label_acc):
        name = "label accuracy (this page's samples)"
        rows.append(MetricRow(name, [None if v is None else v.overall for v in label_acc],
                              None if any(f.startswith(name) for f in flagged) else True))
        # The evaluator's own uncertainty on the same samples: a property of the reading,
        # so no run is "better" for it.
        if any(v is not None and v.disagreement is not None for v in label_acc):
            rows.append(MetricRow("evaluator disagreement (same samples)",
                                  [None if v is None else v.disagreement for v in label_acc]))
    metric_keys = sorted({k for r in runs for k in curves.stat_names(r.records)
                          if k.startswith(curves.METRIC_PREFIX)})
    for key in metric_keys:
        name = key[len(curves.METRIC_PREFIX):]
        up = name in HIGHER_IS_BETTER
        best = [curves.best_point(r.records, key, up) for r in runs]
        rows.append(MetricRow(f"{name} (final)", [r.last(key) for r in runs], up))
        rows.append(MetricRow(f"{name} (best)", [None if b is None else b[1] for b in best], up))
    for name in sorted({n for r in runs for n in r.evaluations}):
        rows.append(MetricRow(f"evaluate: {name}",
                              [r.evaluations.get(name, {}).get("value") for r in runs]))
    def summary(key: str, stat: Optional[str]) -> list[Optional[float]]:
        # summary.json of a finished run, else the newest stats line of one still training
        return [(r.summary or {}).get(key, r.last(stat) if stat else r.last_step)
                for r in runs]

    rows.append(MetricRow("images/s", summary("images_per_s", "Speed/images_per_s"), True))
    rows.append(MetricRow("training time (s)", summary("elapsed_s", "Time/elapsed_s")))
    rows.append(MetricRow("steps", summary("steps", None)))
    return rows


def _label_accuracy(run: RunFolder, evaluators: dict[str, Any]) -> tuple[Optional[Any], str]:
    """The confusion view of a conditional image run's newest checkpoint, or (None, why not)."""
    if run.model is None:
        return None, "the folder has no model.json"
    if not run.is_image or not run.conditional_classes:
        return None, "not a class-conditional image model"
    extractor, spec = find_evaluator(run.config, evaluators)
    if extractor is None:
        return None, spec
    if extractor.n_classes != run.conditional_classes:
        return None, f"evaluator '{spec}' has {extractor.n_classes} classes"
    source, why = source_from_checkpoint(run)
    if source is None:
        return None, str(why)
    return confusion_view(source, extractor), ""


def overlaid_curves(runs: Sequence[RunFolder], labels: Sequence[str]) -> list[dict[str, str]]:
    """One plot per stat group any run has, every run in its own color (the same in every plot).

    A group only some runs report (ACGAN's class losses next to a cGAN) is still drawn, for
    the runs that have it, and its title says which.
    """
    names = [curves.stat_names(r.records) for r in runs]
    plots = []
    for group, keys in curves.group_stats(list(dict.fromkeys(n for ns in names for n in ns))):
        having = [lab for lab, ns in zip(labels, names) if any(k in ns for k in keys)]
        title = group.title
        if len(having) < len(runs):
            title += f" (only {', '.join(having)})"
        fig = curves.plot_overlay(list(zip(labels, (r.records for r in runs))),
                                  dataclasses.replace(group, title=title), keys)
        plots.append({"key": group.key, "title": title, "image": figure_uri(fig)})
    return plots


def build_compare(run_dirs: Sequence[str | Path], out: Optional[str | Path] = None) -> Path:
    """Write the comparison page atomically and return its path.

    Args:
        run_dirs: two or more run folders.
        out: the page (default ``compare.html`` in the current folder).

    Raises:
        GanforgeError: fewer than two runs, or a path that is not a run folder.
    """
    if len(run_dirs) < 2:
        raise GanforgeError("compare needs at least two run folders, e.g. `ganforge compare "
                            "runs/cgan runs/acgan`")
    runs = [RunFolder.read(p) for p in run_dirs]
    labels = labels_for(runs)
    evaluators: dict[str, Any] = {}
    accuracy = [_label_accuracy(r, evaluators) for r in runs]
    views = [a for a, _ in accuracy]
    flags = evaluator_flags(runs, labels, views)
    rows = metric_rows(runs, views, flags)
    groups, seed_notes = averaged_groups(runs, labels)
    context = {
        "title": f"ganforge compare: {', '.join(labels)}",
        "labels": labels,
        "runs": [{"label": lab, "preset": r.config.get("name"), "seed": r.config.get(
            "train", {}).get("seed"), "status": "finished" if r.finished else "in progress",
                  "steps": r.last_step,
                  "findings": [dataclasses.asdict(f) for f in (read_findings(r.path) or [])],
                  "grid": file_uri(r.final_grid) if r.final_grid else None,
                  "evaluator": _evaluator_key(view.evaluator_info) if view else None,
                  "accuracy_note": note}
                 for lab, r, (view, note) in zip(labels, runs, accuracy)],
        "evaluator_flags": flags,
        "differences": config_differences(runs),
        "metrics": [{"name": m.name, "cells": m.values, "best": m.best_index,
                     "groups": [mean_std([m.values[i] for i in g]) for g in groups]}
                    for m in rows],
        "groups": [{"label": " + ".join(labels[i] for i in g), "n": len(g)} for g in groups],
        "seed_notes": seed_notes,
        "per_class": _per_class_table([a for a, _ in accuracy]),
        "curves": overlaid_curves(runs, labels),
    }
    path = Path(out) if out is not None else Path(DEFAULT_OUT)
    return write_page(path, render("compare.html.j2", **context))


def _per_class_table(views: Sequence[Optional[Any]]) -> Optional[list[dict[str, Any]]]:
    """Rows of (class, accuracy per run) when at least one run has a confusion view."""
    present = [v for v in views if v is not None]
    if not present:
        return None
    names = [name for name, _, _ in max(present, key=lambda v: len(v.per_class)).per_class]
    table = []
    for c, name in enumerate(names):
        table.append({"name": name, "cells": [
            v.per_class[c][1] if v is not None and c < len(v.per_class) else None
            for v in views]})
    return table
