"""The quality benchmark's bookkeeping: which scored point each table uses, mean ± std over
seeds, the targets, the time-to-quality curves and ratios, and the JSON/Markdown/PNG results.

Kept apart from the training and scoring (``quality.py``, ``quality_score.py``) so that the
results can be rebuilt from the results store alone (:func:`load_runs`, ``quality.py
--summarise-only``).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Optional

from quality_store import PROTOCOL, load_runs  # noqa: F401  (the runs, read from the store)

# Targets of issue 14 (5 minutes, 2 threads, mean of 3 seeds): (field, "min"|"max", bound).
TARGETS: dict[str, list[tuple[str, str, float]]] = {
    "conditional": [("acc", "min", 0.98), ("worst", "min", 0.95), ("recall", "min", 0.4),
                    ("fid_x_floor", "max", 8.0)],
    "best_conditional": [("acc", "min", 0.995), ("recall", "min", 0.65),
                         ("fid_x_floor", "max", 4.0)],
    "unconditional": [("fid_x_floor", "max", 10.0), ("entropy", "min", 2.25),
                      ("min_share", "min", 0.07), ("recall", "min", 0.4)],
}
COMMON = ["steps", "images_per_s", "fid", "fid_x_floor", "precision", "recall"]
FIELDS = {True: COMMON + ["acc", "worst", "twin_acc", "disagreement"],
          False: COMMON + ["entropy", "min_share"]}
CURVE_FIELDS = {True: ("fid", "acc"), False: ("fid", "entropy")}
TOL = 1e-9


def _same(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) < 1e-6


def point_at(record: dict[str, Any], minutes: float) -> Optional[dict[str, Any]]:
    """The record's scored point at ``minutes`` of training, or None."""
    return next((p for p in record.get("points", []) if _same(p["minutes"], minutes)), None)


def _mean_std(values: list[float]) -> list[float]:
    return [statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0]


def scored(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of this protocol's MNIST runs (presets and typical loops)."""
    return [r for r in records if r.get("protocol") == PROTOCOL and r["kind"] in
            ("preset", "typical")]


def table_points(records: list[dict[str, Any]], minutes: float
                 ) -> dict[str, dict[int, tuple[dict, dict]]]:
    """``{name: {seed: (record, point)}}`` at ``minutes``: per name and seed, the latest run
    whose budget was ``minutes`` (its final point), else the latest longer run's checkpoint at
    ``minutes`` (the same state: nothing in training depends on the budget)."""
    out: dict[str, dict[int, tuple[dict, dict]]] = {}
    for r in scored(records):  # later records replace earlier ones
        p = point_at(r, minutes)
        if p is None:
            continue
        held = out.setdefault(r["name"], {}).get(r["seed"])
        if held is None or _same(r["budget_minutes"], minutes) or \
                not _same(held[0]["budget_minutes"], minutes):
            out[r["name"]][r["seed"]] = (r, p)
    return out


def passes(row: dict[str, Any], tier: str) -> dict[str, bool]:
    """Each target of ``tier`` against the mean over seeds."""
    ok = {}
    for key, kind, bound in TARGETS[tier]:
        mean = row[key][0]
        ok[key] = mean >= bound - TOL if kind == "min" else mean <= bound + TOL
    return ok


def summarise(records: list[dict[str, Any]], minutes: float, floor: float
              ) -> dict[str, dict[str, Any]]:
    """Mean ± std over seeds per preset and typical loop at ``minutes``, with pass/fail."""
    out: dict[str, dict[str, Any]] = {}
    for name, by_seed in sorted(table_points(records, minutes).items()):
        seeds = sorted(by_seed)
        first = by_seed[seeds[0]][0]
        cond = bool(first["conditional"])
        row: dict[str, Any] = {"kind": first["kind"], "conditional": cond, "seeds": seeds,
                               "compare_with": first.get("compare_with"), "minutes": minutes,
                               "runs": [by_seed[s][0]["run_dir"] for s in seeds]}
        for key in FIELDS[cond]:
            values = []
            for s in seeds:
                p = by_seed[s][1]
                value = (p["fid"] / floor if key == "fid_x_floor" else
                         p["step"] if key == "steps" else p.get(key))
                if value is not None:
                    values.append(float(value))
            row[key] = _mean_std(values) if values else None
        if row["kind"] == "preset":
            row["pass"] = passes(row, "conditional" if cond else "unconditional")
            if cond:
                row["pass_best"] = passes(row, "best_conditional")
        out[name] = row
    return out


def summarise_many(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean ± std of the two-digit and Stacked MNIST runs, per preset and budget."""
    latest = {(r["name"], r["seed"], r["budget_minutes"]): r for r in records
              if r.get("protocol") == PROTOCOL and r["kind"] == "many-modes"}
    groups: dict[str, list[dict[str, Any]]] = {}
    for (name, _, minutes), r in sorted(latest.items()):
        groups.setdefault(f"{name}@{minutes:g}min", []).append(r)
    out = {}
    for name, rs in groups.items():
        keys = [k for k in ("value", "worst_class_acc", "kl_to_uniform", "steps")
                if all(k in r for r in rs)]
        out[name] = {"metric": rs[0]["metric"], "seeds": [r["seed"] for r in rs],
                     **{k: _mean_std([float(r[k]) for r in rs]) for k in keys}}
    return out


def _missed(row: dict[str, Any], tier: str, flags: dict[str, bool]) -> str:
    """The targets a row misses, with its mean and the bound, e.g. "acc 0.957 (>= 0.98)"."""
    bounds = {key: (kind, bound) for key, kind, bound in TARGETS[tier]}
    return ", ".join(f"{k} {row[k][0]:.3g} ({'>=' if bounds[k][0] == 'min' else '<='} "
                     f"{bounds[k][1]:g})" for k, ok in flags.items() if not ok)


def target_checks(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per target: each preset's tier, and "one conditional preset at the top tier"."""
    lines = []
    for name, row in summary.items():
        if row["kind"] != "preset":
            continue
        tier = "conditional" if row["conditional"] else "unconditional"
        missed = _missed(row, tier, row["pass"])
        lines.append({"target": f"{name}: {tier} targets", "pass": not missed,
                      "detail": f"missed: {missed}" if missed else "all met"})
    cond = {n: r for n, r in summary.items() if r["kind"] == "preset" and r["conditional"]}
    if cond:
        best = [n for n, r in cond.items() if all(r["pass_best"].values())]
        detail = ", ".join(best) if best else "; ".join(
            f"{n} missed {_missed(r, 'best_conditional', r['pass_best'])}"
            for n, r in cond.items())
        lines.append({"target": "best conditional preset: acc >= 0.995, recall >= 0.65, "
                      "FID <= 4x floor", "pass": bool(best), "detail": detail})
    return lines


# ----------------------------------------------------------------------------- time to quality

def curves(records: list[dict[str, Any]], curve_minutes: list[float]
           ) -> dict[str, dict[str, Any]]:
    """Per name, the mean over its curve runs (budget = the last curve minute) of FID and label
    accuracy (conditional) or digit entropy at each curve minute (None where not scored)."""
    last = max(curve_minutes)
    runs: dict[str, dict[int, dict]] = {}
    for r in scored(records):
        if _same(r["budget_minutes"], last):
            runs.setdefault(r["name"], {})[r["seed"]] = r
    out = {}
    for name, by_seed in sorted(runs.items()):
        first = next(iter(by_seed.values()))
        cond = bool(first["conditional"])
        entry: dict[str, Any] = {"kind": first["kind"], "conditional": cond,
                                 "compare_with": first.get("compare_with"),
                                 "seeds": sorted(by_seed), "minutes": list(curve_minutes)}
        for key in CURVE_FIELDS[cond]:
            values = []
            for m in curve_minutes:
                got = [p[key] for p in (point_at(r, m) for r in by_seed.values()) if p]
                values.append(statistics.fmean(got) if got else None)
            entry[key] = values
        out[name] = entry
    return out


def minutes_to_reach(minutes: list[float], values: list[Optional[float]], target: float,
                     higher_is_better: bool) -> tuple[Optional[float], str]:
    """When a curve first reaches ``target``, interpolated linearly in log-minutes.

    Returns:
        ``(t, "=")`` when it crosses at t; ``(first minute, "<=")`` when its first point already
        reaches the target; ``(last minute, ">")`` when it never does; ``(None, "")`` when the
        curve has no points.
    """
    pts = [(m, v) for m, v in zip(minutes, values) if v is not None]
    if not pts:
        return None, ""

    def reached(v: float) -> bool:
        return v >= target - TOL if higher_is_better else v <= target + TOL

    if reached(pts[0][1]):
        return pts[0][0], "<="
    for (m0, v0), (m1, v1) in zip(pts, pts[1:]):
        if reached(v1):
            frac = (target - v0) / (v1 - v0) if v1 != v0 else 1.0
            return math.exp(math.log(m0) + frac * (math.log(m1) - math.log(m0))), "="
    return pts[-1][0], ">"


def ratio_text(t_typ: tuple[Optional[float], str], t_gf: tuple[Optional[float], str]
               ) -> tuple[Optional[float], str]:
    """The headline "typical minutes / ganforge minutes" and how exact it is ("=", ">=", "<",
    "<=", or "" when the two bounds do not combine into one)."""
    (a, qa), (b, qb) = t_typ, t_gf
    if a is None or b is None:
        return None, ""
    value = a / b
    lower = qb == "<="               # ganforge needed at most b: the ratio is at least a / b
    upper = qb == ">" or qa == "<="  # ganforge needs more than b, or the loop at most a
    if lower and upper:
        return None, ""
    return value, ">=" if lower else "<" if qb == ">" else "<=" if qa == "<=" else "="


def time_to_quality(curve: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per preset with a typical loop: X = the loop's best point on its curve (normally its
    last); minutes each needs to reach X, and their ratio (FID; label accuracy too when
    conditional)."""
    rows = []
    for name, c in curve.items():
        base = curve.get(c.get("compare_with") or "")
        if c["kind"] != "preset" or base is None:
            continue
        row: dict[str, Any] = {"preset": name, "typical": c["compare_with"]}
        for key, higher in (("fid", False), ("acc", True)):
            if key not in c or key not in base:
                continue
            known = [v for v in base[key] if v is not None]
            if not known:
                continue
            x = max(known) if higher else min(known)
            t_typ = minutes_to_reach(base["minutes"], base[key], x, higher)
            t_gf = minutes_to_reach(c["minutes"], c[key], x, higher)
            ratio, how = ratio_text(t_typ, t_gf)
            row[key] = {"x": x, "typical_minutes": list(t_typ), "ganforge_minutes": list(t_gf),
                        "ratio": ratio, "ratio_is": how}
        rows.append(row)
    return rows


def plot(curve: dict[str, dict[str, Any]], path: Path, floor: Optional[float] = None) -> Path:
    """FID against minutes (log-log), one panel per typical loop with the presets held to it."""
    from ganforge.imaging import agg_figure

    groups = sorted({c["compare_with"] for c in curve.values()
                     if c["kind"] == "preset" and c.get("compare_with")})
    groups = groups or [None]
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = agg_figure(4.6 * cols, 3.2 * rows, dpi=80)
    for i, group in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name, c in curve.items():
            if c["kind"] == "preset" and c.get("compare_with") == group:
                pts = [(m, v) for m, v in zip(c["minutes"], c["fid"]) if v is not None]
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, lw=1.2, label=name)
        base = curve.get(group or "")
        if base is not None:
            pts = [(m, v) for m, v in zip(base["minutes"], base["fid"]) if v is not None]
            if pts:
                ax.plot(*zip(*pts), "k--", marker="s", ms=3, lw=1.5, label=group)
        if floor:
            ax.axhline(floor, color="0.6", lw=0.8, ls=":", label="real-data floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("minutes of training")
        ax.set_ylabel("FID (mnist-lenet)")
        ax.set_title(f"vs {group}" if group else "FID", fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


# ----------------------------------------------------------------------------- markdown

def _ms(v: Optional[list[float]], fmt: str = ".3f") -> str:
    return "–" if v is None else f"{v[0]:{fmt}} ± {v[1]:{fmt}}"


def _num(v: Optional[float], fmt: str = ".3f") -> str:
    return "–" if v is None else f"{v:{fmt}}"


def _minutes(t: list) -> str:
    value, how = t
    if value is None:
        return "–"
    return {"<=": "≤ ", ">": "> "}.get(how, "") + f"{value:.2g}"


def _ratio(entry: Optional[dict[str, Any]]) -> str:
    if not entry or entry["ratio"] is None:
        return "–"
    sign = {">=": "≥ ", "<": "< ", "<=": "≤ "}.get(entry["ratio_is"], "")
    return f"**{sign}{entry['ratio']:.2g}×**"


def ordered(summary: dict[str, dict[str, Any]], order: list[str], cond: bool) -> list[str]:
    """Preset rows in ``order`` (then the rest), each typical loop right after the first preset
    held to it."""
    names = [n for n in summary if summary[n]["conditional"] == cond]
    presets = [n for n in order if n in names] + sorted(
        n for n in names if n not in order and summary[n]["kind"] == "preset")
    out: list[str] = []
    for name in presets:
        out.append(name)
        typ = summary[name].get("compare_with")
        if typ in names and typ not in out:
            out.append(typ)
    return out + sorted(n for n in names if n not in out)


def _table(res: dict[str, Any], cond: bool) -> list[str]:
    summary, floor = res["summary"], res["floor"]
    names = ordered(summary, res["order"], cond)
    if not names:  # a floor row alone would read like a result
        return ["None measured on this kind of machine yet."]
    extra = (["label acc", "worst class", "evaluator disagreement"] if cond
             else ["digit entropy", "smallest digit share"])
    head = ["preset", "seeds", "steps", "img/s", *extra, "recall", "precision", "FID",
            "FID / floor", "targets"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    real = ([_num(floor.get("acc")), _num(floor.get("worst")), _num(floor.get("disagreement"))]
            if cond else [_num(floor.get("entropy")), _num(floor.get("min_share"))])
    lines.append(f"| real MNIST test digits (the floor) | – | – | – | {' | '.join(real)} | "
                 f"{_num(floor['recall'])} | {_num(floor['precision'])} | "
                 f"{_num(floor['fid'])} | 1 | – |")
    for name in names:
        r = summary[name]
        cells = ([_ms(r["acc"]), _ms(r["worst"]), _ms(r.get("disagreement"))] if cond
                 else [_ms(r["entropy"]), _ms(r["min_share"])])
        if r["kind"] == "preset":
            ok = " ".join(f"{k}:{'yes' if v else 'NO'}" for k, v in r["pass"].items())
            label = name
        else:
            ok, label = "(typical loop)", f"*{name}*"
        lines.append(f"| {label} | {len(r['seeds'])} | {r['steps'][0]:.0f} | "
                     f"{r['images_per_s'][0]:,.0f} | {' | '.join(cells)} | {_ms(r['recall'])} | "
                     f"{_ms(r['precision'])} | {_ms(r['fid'], '.2f')} | "
                     f"{_ms(r['fid_x_floor'], '.1f')} | {ok} |")
    return lines


def _curve_lines(res: dict[str, Any]) -> list[str]:
    curve, minutes = res["curves"], res["protocol"]["curve_minutes"]
    head = ["model", "seeds"] + [f"{m:g} min" for m in minutes]
    lines = ["FID, then label accuracy (conditional) or digit entropy (unconditional), at each "
             "point of the curve runs (mean over their seeds):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, c in curve.items():
        second = "acc" if c["conditional"] else "entropy"
        cells = [f"{_num(f, '.2f')} / {_num(s)}" for f, s in zip(c["fid"], c[second])]
        label = name if c["kind"] == "preset" else f"*{name}*"
        lines.append(f"| {label} | {','.join(map(str, c['seeds']))} | {' | '.join(cells)} |")
    return lines


def _header(res: dict[str, Any]) -> list[str]:
    p, m, sc, floor = res["protocol"], res["machine"], res["scorer"], res["floor"]
    threads = f"{p['threads']} CPU thread{'s' if p['threads'] != 1 else ''}"
    return ["# MNIST quality after a fixed CPU budget" + (" (quick mode: not a result)"
                                                        if res.get("quick") else ""), "",
            f"Protocol `{PROTOCOL}` (see `benchmarks/quality.py`): each model trains on the "
            f"10,000 MNIST test digits for {p['minutes']:g} minutes of wall clock with {threads}, "
            "one run at a time; the final G and every timed checkpoint (the EMA copy of G when "
            f"kept) draw {sc['n_samples']:,} samples (labels cycling over the digits), scored "
            f"by `{sc['evaluator']}` (recipe v{sc['evaluator_recipe']}, sha256 "
            f"{str(sc['evaluator_sha256'])[:12]}) against {sc['reference_n']:,} MNIST digits "
            f"the models never saw ({sc['reference']}). Mean ± std over seeds. FID floor: "
            f"the real test digits scored the same way, {floor['fid']:.3f}.", "",
            f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores, torch {m['torch']}, "
            f"ganforge commit {m['ganforge_commit']}. Results rebuilt {res['date_utc']} UTC.", ""]


def render_markdown(res: dict[str, Any]) -> str:
    """The results page: protocol, targets, both tables, time to quality, runs, commands."""
    p = res["protocol"]
    out = _header(res) + ["## Targets (issue 14)", "", "| target | result | detail |",
                          "|---|---|---|"]
    out += [f"| {t['target']} | {'PASS' if t['pass'] else 'FAIL'} | {t['detail']} |"
            for t in res["targets"]]
    out += ["", f"## Conditional models at {p['minutes']:g} minutes", "",
            "Targets: acc ≥ 0.98, worst class ≥ 0.95, recall ≥ 0.4, FID ≤ 8× floor. "
            "Evaluator disagreement: share of samples the evaluator and its twin read "
            "differently (its own uncertainty).", ""]
    out += _table(res, True)
    out += ["", f"## Unconditional models at {p['minutes']:g} minutes", "",
            "Targets: FID ≤ 10× floor, digit entropy ≥ 2.25 (max ln 10 = 2.303), every digit "
            "≥ 7% of samples, recall ≥ 0.4.", ""]
    out += _table(res, False)
    out += ["", "## Time to quality", "",
            f"Curve runs: seeds {p['curve_seeds']} at {max(p['curve_minutes']):g} minutes, "
            f"scored at {', '.join(f'{x:g}' for x in p['curve_minutes'])} minutes "
            "(`log.checkpoint_minutes`). X = the typical loop's best point on its curve; "
            "minutes to reach X interpolated in log-minutes; ratio = typical loop's minutes / "
            "ganforge's (≥: ganforge was there by its first point; <: it never got there).", "",
            "| preset | typical loop | X: FID | loop reaches it (min) | ganforge (min) | ratio | "
            "X: label acc | loop (min) | ganforge (min) | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for row in res["time_to_quality"]:
        f, a = row.get("fid"), row.get("acc")
        acc = ([_num(a["x"]), _minutes(a["typical_minutes"]), _minutes(a["ganforge_minutes"]),
                _ratio(a)] if a else ["–"] * 4)
        out.append(f"| {row['preset']} | {row['typical']} | {_num(f['x'], '.2f')} | "
                   f"{_minutes(f['typical_minutes'])} | {_minutes(f['ganforge_minutes'])} | "
                   f"{_ratio(f)} | {' | '.join(acc)} |")
    out += ["", f"![FID against minutes]({res['plot']})", ""] + _curve_lines(res)
    out += ["", "## The typical loops", "", "`benchmarks/baseline.py`: a torchvision-style PIL "
            "dataset with per-sample ToTensor/Normalize, DataLoader(num_workers=0), a second G "
            "forward for the G step, D not frozen; scored like the presets.", ""]
    out += [f"- `{k}`: {v}" for k, v in res["typical_loops"].items()]
    out += ["", "## Runs", "", "| model | seed | budget (min) | threads | steps | img/s | "
            "load avg before → after (1 min) | wall (min) |", "|---|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        out.append(f"| {r['name']} | {r['seed']} | {r['budget_minutes']:g} | {r['threads']} | "
                   f"{r['steps']} | {r['images_per_s']:,.0f} | {r['loadavg_before'][0]:.2f} → "
                   f"{r['loadavg_after'][0]:.2f} | {r['wall_s'] / 60:.1f} |")
    if res.get("many_modes"):
        out += ["", "## Many classes and Stacked MNIST", "", "| preset | seeds | steps | metric "
                "| value | worst class | KL to uniform |", "|---|---|---|---|---|---|---|"]
        for name, r in res["many_modes"].items():
            out.append(f"| {name} | {len(r['seeds'])} | {r['steps'][0]:.0f} | {r['metric']} | "
                       f"{_ms(r.get('value'))} | {_ms(r.get('worst_class_acc'))} | "
                       f"{_ms(r.get('kl_to_uniform'))} |")
    out += ["", "## Commands", "", "Runs (each appends to the run log):", ""]
    out += [f"- `{c}`" for c in res["commands"]]
    out += ["", f"These results were rebuilt by `{res['summary_command']}`."]
    if res.get("excluded_other_scoring"):
        out.append(f"{res['excluded_other_scoring']} logged runs of another kind of machine or "
                   "scored another way (another evaluator, sample or reference count) are left "
                   "out (another machine's runs are in its own `quality_cpu_*.md`).")
    if res.get("excluded_earlier_settings"):
        out.append("Logged runs of an earlier form of " + ", ".join(
            f"`{n}`" for n in res["excluded_earlier_settings"]) + " (settings that no longer "
            "resolve from the preset) are left out.")
    return "\n".join(out) + "\n"
