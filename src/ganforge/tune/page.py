"""The study page, ``STUDY_DIR/study.html``: one self-contained file (plots embedded as PNG).

What the study is (preset, metric, budget, seeds, pruner, the command, the storage), the best
trial and the re-verification of the winner (``--verify``), each parameter's importance
(Optuna's fANOVA), the metric over the trials and against each parameter, and every trial:
state, value, each seed's value, the values searched, how long it took and why it was pruned or
failed. Built from the storage alone, so any worker (or machine) can rebuild it.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from typing import Any, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from ganforge.tune.job import BEST_FILE, TuneJob, hide_password
from ganforge.tune.study import (COMMAND, REASON, RETRY_OF, SEARCHED, VALUES, VERIFY, WORKER,
                                 best_trial)
from ganforge.tune.verify import verify_table

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;font-size:.9em}th{background:#f3f3f3}pre{background:#f6f6f6;padding:.5em;
white-space:pre-wrap}.COMPLETE{color:#060}.PRUNED{color:#a60}.FAIL{color:#b00}img{max-width:100%}"""


def _png(fig: Any) -> str:
    """A matplotlib figure as an embedded ``<img>``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _complete(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]


def history_plot(job: TuneJob, trials: list[FrozenTrial]) -> str:
    """The metric over the trials: each completed trial, the best so far, the pruned ones at
    their last check point."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    done = _complete(trials)
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="completed")
    best, line = None, []
    for t in done:
        better = best is None or (t.value < best if job.direction == "minimize" else t.value > best)
        best = t.value if better else best
        line.append(best)
    ax.step([t.number for t in done], line, where="post", label="best so far")
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        ax.plot([t.number for t in pruned],
                [t.intermediate_values[max(t.intermediate_values)] for t in pruned], "x",
                color="grey", label="pruned (last check point)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(job.metric)
    ax.legend(fontsize="small")
    return _png(fig)


def param_plots(job: TuneJob, trials: list[FrozenTrial]) -> str:
    """The metric against each parameter (completed trials)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    done = _complete(trials)
    if not done or not job.params:
        return ""
    fig = Figure(figsize=(3.4 * len(job.params), 3))
    for i, param in enumerate(job.params, start=1):
        ax = fig.add_subplot(1, len(job.params), i)
        have = [t for t in done if param.key in t.params]
        if param.dist == "choice":
            labels = [str(c) for c in param.choices]
            xs = [labels.index(str(t.params[param.key])) if str(t.params[param.key]) in labels
                  else len(labels) for t in have]
            ax.set_xticks(range(len(labels)), labels, fontsize="small")
        else:
            xs = [t.params[param.key] for t in have]
            if param.dist == "loguniform":
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # within a decade they overlap
        ax.plot(xs, [t.value for t in have], "o")
        ax.set_xlabel(param.key)
        ax.set_ylabel(job.metric if i == 1 else "")
    return _png(fig)


def importances(study: optuna.Study) -> Optional[dict[str, float]]:
    """Each parameter's share of the metric's variance (fANOVA), or None while too few trials
    completed (or their values do not vary, or scikit-learn, which fANOVA uses, is missing)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ImportError):
        return None


def _row(cells: list[Any], head: bool = False, cls: str = "") -> str:
    tag = "th" if head else "td"
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + \
        "</tr>"


def _note(trial: FrozenTrial, retried_as: dict[int, int]) -> str:
    note = str(trial.user_attrs.get(REASON, ""))
    if trial.number in retried_as:
        note = (note or "its worker stopped") + f"; run again as trial {retried_as[trial.number]}"
    if RETRY_OF in trial.system_attrs:
        note = f"retry of trial {trial.system_attrs[RETRY_OF]}" + (f"; {note}" if note else "")
    return note


def _short(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def trials_table(job: TuneJob, trials: list[FrozenTrial]) -> str:
    retried_as = {t.system_attrs[RETRY_OF]: t.number for t in trials if RETRY_OF in t.system_attrs}
    keys = [p.key for p in job.params]
    rows = [_row(["trial", "state", job.metric, "per seed", *keys, "minutes", "worker", "note"],
                 head=True)]
    for t in trials:
        took = ((t.datetime_complete - t.datetime_start).total_seconds() / 60
                if t.datetime_complete and t.datetime_start else None)
        per_seed = ", ".join(f"{v:.4g}" for v in t.user_attrs.get(VALUES, []))
        rows.append(_row([t.number, t.state.name, "" if t.value is None else f"{t.value:.4g}",
                          per_seed, *(_short(t.params.get(k, "")) for k in keys),
                          "" if took is None else f"{took:.2f}", t.user_attrs.get(WORKER, ""),
                          _note(t, retried_as)], cls=t.state.name))
    return "<table>" + "".join(rows) + "</table>"


def _facts(job: TuneJob, study: optuna.Study, trials: list[FrozenTrial]) -> str:
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    dashboard = f"optuna-dashboard {hide_password(job.storage)}"
    facts = [("preset", job.preset), ("metric", f"{job.metric} ({job.direction})"),
             ("budget", f"{job.budget.describe()} a run, {job.seeds} seed(s) a trial"),
             ("sampler", job.sampler), ("pruner", job.pruner),
             ("trials", f"{shown or 'none yet'} (of {job.trials})"),
             ("storage", f"{hide_password(job.storage)} (study '{job.study_name}')"),
             ("command", study.user_attrs.get(COMMAND, job.command())),
             ("browse it", dashboard)]
    return "<table>" + "".join(_row([k, v]) for k, v in facts) + "</table>"


def study_page(job: TuneJob, study: optuna.Study) -> str:
    """The page's HTML."""
    trials = study.get_trials(deepcopy=False)
    parts = [f"<h1>ganforge tune: {html.escape(job.study_name)}</h1>", _facts(job, study, trials)]
    best = best_trial(study)
    if best is not None:
        values = ", ".join(best.user_attrs.get(SEARCHED, []))
        parts += [f"<h2>Best: trial {best.number}, {job.metric} {best.value:.4g}</h2>",
                  f"<p>{html.escape(values)}</p><p>As a preset: <code>{BEST_FILE}</code> "
                  f"(<code>ganforge train --config {html.escape(job.out)}/{BEST_FILE}</code>)"
                  "</p>"]
    verified = study.user_attrs.get(VERIFY)
    if verified:
        parts += ["<h2>Re-verified</h2>", f"<pre>{html.escape(verify_table(job, verified))}</pre>"]
    share = importances(study)
    parts.append("<h2>Parameter importance</h2>")
    parts.append("<table>" + _row(["parameter", "importance"], head=True) + "".join(
        _row([k, f"{v:.3f}"]) for k, v in share.items()) + "</table>" if share else
        "<p>Needs two or more completed trials whose values differ (and scikit-learn).</p>")
    if _complete(trials):
        parts += [f"<h2>{html.escape(job.metric)} over the trials</h2>", history_plot(job, trials),
                  f"<h2>{html.escape(job.metric)} against each parameter</h2>",
                  param_plots(job, trials)]
    parts += ["<h2>Trials</h2>", trials_table(job, trials)]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(job.study_name)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
