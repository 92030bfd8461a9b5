"""``report.html``: one self-contained page that explains a run.

Sections, top to bottom: a header (status, steps, time, speed), the diagnostics that fired with
their advice, the final per-class grid and the fixed-noise grids over training as an animation,
the training curves grouped by meaning (:mod:`ganforge.reporting.curves`), the in-loop metrics
with their best step, ``ganforge evaluate`` results, the confusion matrix of conditional samples
under the dataset's evaluator, attribute flips of an attribute-conditioned G (each attribute
off and on with everything else fixed), a latent interpolation strip, the resolved config
(values that differ from the defaults in bold) and the environment the run trained in.

The trainer rebuilds the page while it trains, passing its live G as the sample source so no
checkpoint is read; ``ganforge report RUN`` rebuilds it from the folder and the newest
checkpoint. Sections that need something the folder does not have yet say so instead.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Optional

from ganforge.config import Config, DiagnosticsConfig
from ganforge.metrics.base import HIGHER_IS_BETTER, per_class_line, protocol_line
from ganforge.reporting import curves
from ganforge.reporting.diagnostics import read_findings, replay
from ganforge.reporting.generated import (animation_uri, attribute_flips, confusion_view,
                                          find_evaluator, interpolation_strip,
                                          source_from_checkpoint)
from ganforge.reporting.page import (array_uri, environment, figure_uri, file_uri, render,
                                     write_page)
from ganforge.run.folder import RunFolder, flatten
from ganforge.run.layout import REPORT_FILE



def _duration(seconds: Optional[float]) -> Optional[str]:
    if seconds is None or seconds != seconds:
        return None
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def header(run: RunFolder) -> dict[str, Any]:
    """Name, status and the headline numbers."""
    cfg, summary = run.config, run.summary or {}
    env = run.environment or {}
    model, loss, data = cfg.get("model", {}), cfg.get("loss", {}), cfg.get("data", {})
    kind = "conditional " if model.get("conditional") else ""
    status = "finished" if run.finished else (f"in progress (step {run.last_step})"
                                              if run.records else "starting")
    if run.stopped is not None and not run.finished:
        status = f"stopped at step {run.stopped.get('step')}: {run.stopped.get('reason')}"
    return {
        "name": run.name, "preset": cfg.get("name"), "description": cfg.get("description", ""),
        "status": status, "finished": run.finished,
        "facts": [
            ("model", f"{kind}{model.get('arch')} G/D, loss {loss.get('name')}"),
            ("data", f"{data.get('name')} ({data.get('split')})"),
            ("steps", summary.get("steps", run.last_step)),
            ("training time", _duration(summary.get("elapsed_s",
                                                    run.last("Time/elapsed_s")))),
            ("images/s", summary.get("images_per_s", run.last("Speed/images_per_s"))),
            ("device", summary.get("device", env.get("device"))),
        ],
    }


def diagnostics_section(run: RunFolder) -> dict[str, Any]:
    """Findings from ``diagnostics.jsonl``, or the stats checks replayed for older runs."""
    findings = read_findings(run.path)
    note = None
    if findings is None:
        known = {f.name for f in dataclasses.fields(DiagnosticsConfig)}
        thresholds = DiagnosticsConfig(**{k: v for k, v in run.config.get("diagnostics", {}).items()
                                          if k in known})
        findings = replay(run.records, thresholds)
        note = ("this run has no diagnostics.jsonl; the checks on its stats were replayed "
                "(sample checks need the training process)")
    return {"findings": [dataclasses.asdict(f) for f in findings], "note": note}


def samples_section(run: RunFolder) -> dict[str, Any]:
    out: dict[str, Any] = {"final": None, "animation": None, "frames": [], "count": 0}
    grid = run.final_grid
    if grid is not None:
        out["final"] = file_uri(grid)
        out["final_step"] = run.snapshots[-1][0] if run.snapshots else None
    if run.snapshots:
        out["animation"], out["frames"] = animation_uri(run.snapshots)
        out["count"] = len(run.snapshots)
    return out


def curves_section(run: RunFolder) -> list[dict[str, str]]:
    groups = curves.group_stats(curves.stat_names(run.records))
    return [{"key": g.key, "title": g.title, "stats": ", ".join(keys),
             "image": figure_uri(curves.plot_group(run.records, g, keys))}
            for g, keys in groups]


def metrics_section(run: RunFolder) -> Optional[dict[str, Any]]:
    """In-loop metrics over training with each one's best step, or None without any."""
    keys = sorted(k for k in curves.stat_names(run.records) if k.startswith(curves.METRIC_PREFIX))
    if not keys:
        return None
    higher = [k[len(curves.METRIC_PREFIX):] in HIGHER_IS_BETTER for k in keys]
    rows = []
    for key, up in zip(keys, higher):
        best = curves.best_point(run.records, key, up)
        rows.append({"name": key[len(curves.METRIC_PREFIX):], "final": run.last(key),
                     "best": None if best is None else best[1],
                     "best_step": None if best is None else best[0]})
    return {"image": figure_uri(curves.plot_metrics(run.records, keys, higher)), "rows": rows,
            "best_metric": run.config.get("eval", {}).get("best"), "best_step": run.best_step}


def evaluations_section(run: RunFolder) -> dict[str, Any]:
    """``ganforge evaluate`` results saved in ``metrics.json``: those of the run's current
    generator, and apart from them those of an earlier one (or of one not recorded)."""
    rows: dict[str, list[dict[str, Any]]] = {"current": [], "earlier": []}
    for name, r in sorted(run.evaluations.items()):
        rows["current" if run.is_current(r) else "earlier"].append({
            "name": name, "value": r.get("value"), "model": model_label(r.get("model")),
            "details": {k: v for k, v in (r.get("details") or {}).items()
                        if isinstance(v, (int, float))},
            "evaluator": evaluator_label(r.get("protocol") or {}),
            "per_class": per_class_line(r.get("details") or {}),
            "protocol": protocol_line(r.get("protocol") or {})})
    return {**rows, "step": run.checkpoint_step}


def model_label(model: Any) -> str:
    """"step 1200, EMA G" for a result's recorded generator; "step unknown" without one."""
    if not isinstance(model, dict) or model.get("step") is None:
        return "step unknown"
    return f"step {model['step']}" + (", EMA G" if model.get("ema") else "")


def evaluator_label(protocol: dict[str, Any]) -> Optional[str]:
    """Which evaluator scored a ``metrics.json`` result: "read by NAME · recipe vR · sha S"."""
    name = protocol.get("extractor")
    if not name:
        return None
    parts = [f"read by {name}"]
    if protocol.get("extractor_recipe") is not None:
        parts.append(f"recipe v{protocol['extractor_recipe']}")
    if protocol.get("extractor_sha256"):
        parts.append(f"sha {str(protocol['extractor_sha256'])[:8]}")
    if protocol.get("extractor_recipe_current") is False:
        parts.append("older recipe: not comparable with current numbers")
    return " · ".join(parts)


def generator_sections(run: RunFolder, source: Any, evaluators: Optional[dict[str, Any]]
                       ) -> dict[str, Any]:
    """Confusion matrix, attribute flips and interpolation strip from ``source`` (a
    :class:`SampleSource`)."""
    out: dict[str, Any] = {"origin": None, "confusion": None, "confusion_note": None,
                           "interpolation": None, "interpolation_note": None,
                           "flips": [], "flips_note": None,
                           # The flips section only exists for attribute-conditioned runs.
                           "show_flips": bool(
                               run.config.get("model", {}).get("conditional")
                               and run.config.get("data", {}).get("labels") == "attributes")}
    if not run.is_image:
        note = "drawn for image models only (this run's samples are points)"
        out["confusion_note"] = out["interpolation_note"] = out["flips_note"] = note
        return out
    if source is None:
        source, why = source_from_checkpoint(run)
        if source is None:
            out["confusion_note"] = out["interpolation_note"] = out["flips_note"] = why
            return out
    out["origin"] = f"{source.origin} (step {source.step})"
    out["flips"], out["flips_note"] = flips_section(source)
    if source.needs_attributes and source.attributes is None:
        out["interpolation_note"] = ("this G is conditioned on the data's attribute rows; the "
                                     "strip is drawn by the report the trainer writes")
    else:
        out["interpolation"] = array_uri(interpolation_strip(source))
    if not source.n_classes:
        out["confusion_note"] = "the confusion matrix needs a class-conditional model"
        return out
    extractor, spec = find_evaluator(run.config, evaluators)
    if extractor is None:
        out["confusion_note"] = spec
    elif extractor.n_classes != source.n_classes:
        out["confusion_note"] = (f"evaluator '{spec}' has {extractor.n_classes} classes but the "
                                 f"model has {source.n_classes}; train one on this dataset")
    else:
        out["confusion"] = dataclasses.asdict(confusion_view(source, extractor))
    return out


def flips_section(source: Any) -> tuple[list[dict[str, str]], Optional[str]]:
    """Attribute flip grids of an attribute-conditioned G, or ([], why there are none)."""
    if not source.needs_attributes:
        return [], "drawn for models conditioned on attribute vectors (data.labels=attributes)"
    if source.attributes is None:
        return [], ("this G is conditioned on the data's attribute rows; the flips are drawn "
                    "by the report the trainer writes")
    try:
        grids = attribute_flips(source)
    except ValueError as err:  # continuous conditions: nothing to switch off and on
        return [], str(err)
    return [{"attribute": name, "image": array_uri(grid)} for name, grid in grids], None


def config_section(run: RunFolder) -> list[dict[str, Any]]:
    """The resolved config by section; values that differ from the defaults are marked."""
    defaults = flatten(Config().to_dict())
    sections: dict[str, list[dict[str, Any]]] = {}
    for key, value in flatten(run.config).items():
        section, _, name = key.rpartition(".")
        sections.setdefault(section or "run", []).append({
            "key": name, "value": json.dumps(value),
            "changed": key in defaults and defaults[key] != value})
    return [{"name": name, "rows": rows} for name, rows in sections.items()]


def build_report(run_dir: str | Path, source: Any = None,
                 evaluators: Optional[dict[str, Any]] = None) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    Args:
        run_dir: a run folder.
        source: a :class:`~ganforge.reporting.generated.SampleSource` to draw the generator
            sections from (the trainer passes its live G); None reads the newest checkpoint.
        evaluators: a cache of loaded evaluators by spec, kept between rebuilds.

    Raises:
        GanforgeError: ``run_dir`` is not a run folder, or one of its files is corrupt.
    """
    run = RunFolder.read(run_dir)
    built = environment()
    context = {
        "title": f"ganforge report: {run.name}",
        "run": header(run),
        "diagnostics": diagnostics_section(run),
        "samples": samples_section(run),
        "curves": curves_section(run),
        "metrics": metrics_section(run),
        "evaluations": evaluations_section(run),
        "generated": generator_sections(run, source, evaluators),
        "config": config_section(run),
        "environment": run.environment or built,
        "environment_note": None if run.environment else
        "the run folder has no environment.json; these are the report builder's versions",
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "built_with": f"ganforge {built['ganforge']}",
    }
    return write_page(run.path / REPORT_FILE, render("report.html.j2", **context))
