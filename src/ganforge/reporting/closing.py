"""The lines ``ganforge train`` ends with: where the report is, the run's scores (and which model
each measured), and the next commands to try.

Every "next:" command is built from what the run supports, so each one runs as printed:

* ``generate`` asks for what the model is conditioned on (:data:`GENERATE_FLAGS`): classes get
  ``--per-class``, K-column condition rows get one example row (``--condition``), unconditional
  runs ``--n``; counts are the run's own grid sizes;
* ``evaluate`` lists the metrics that apply (:data:`SUGGESTED_METRICS`): feature metrics only
  for images with an evaluator found on this machine (``eval.extractor``, ``<dataset>-lenet``,
  an alias, or the Inception weights when present), the toy sets' own metrics, Parzen for
  vectors or images without an evaluator; the sample count is ``eval.final_samples`` and the
  reference split the data's held-out one (the training split when it has none);
* ``export`` names the first format whose packages are installed;
* one command per experiment tracker the run logged to (:data:`TRACKER_HINTS`).

Scores come from ``metrics.json``; each says the step and G (EMA or not) it measured, and a
score of an earlier model than the run's newest checkpoint is listed after the current ones,
marked as such.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

from ganforge.config import Config
from ganforge.data import build_dataset, cheap_to_build
from ganforge.errors import GanforgeError
from ganforge.metrics.base import per_class_line, protocol_line
from ganforge.metrics.condition import condition_targets
from ganforge.metrics.coverage import toy_modes
from ganforge.reporting.generated import evaluator_candidates, find_evaluator
from ganforge.run.export import missing_modules
from ganforge.run.folder import RunFolder
from ganforge.run.layout import REPORT_FILE
from ganforge.run.loaded import load_config

# Export formats and their file suffix, by preference: the first whose packages are installed
# is shown.
EXPORT_PREFERENCE = {"onnx": ".onnx", "torchscript": ".pt"}
INDENT = " " * 12  # continuation lines line up under "metric:     "


# --------------------------------------------------------------------------------------------
# What a run supports
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunTraits:
    """What a run supports, from its model record and config (and, for scoring, what this
    machine holds).

    Attributes:
        path: the run folder as the user named it.
        cfg: the run's resolved config.
        image: samples are (C, H, W) images; False for (D,) vectors.
        condition: "none", "classes" or "vectors" (K-column condition rows).
        n_classes: classes, or condition columns K.
        example_row: for "vectors", one condition row in the data's units (see
            :func:`example_row`); else None.
        evaluator: the evaluator spec for feature metrics, None when none is found here.
        evaluator_classes: its class (or attribute) count; 0 without a classifier head.
        evaluator_attributes: its head is K independent attributes.
        split: the reference split ``evaluate`` scores against.
    """

    path: Path
    cfg: Config
    image: bool
    condition: str
    n_classes: int
    example_row: Optional[list[float]]
    evaluator: Optional[str]
    evaluator_classes: int
    evaluator_attributes: bool
    split: str

    @property
    def toy(self) -> Optional[str]:
        return self.cfg.data.toy if self.cfg.data.name == "toy-2d" else None


def example_row(record: dict[str, Any]) -> list[float]:
    """One condition row a vector-conditioned run can be asked for, in the data's units.

    Where the run standardised its condition columns, the data's mean row (0/1 attribute
    columns keep mean 0: no attribute); otherwise the first column 1 and the others 0 (angle
    0 of a ring's (cos, sin), the first attribute of a 0/1 table).
    """
    scaling = (record.get("scaling") or {}).get("y")
    if scaling:
        return [float(v) for v in scaling["mean"]]
    return [1.0] + [0.0] * (int(record["n_classes"]) - 1)


def _evaluator(folder: RunFolder, cfg: Config) -> tuple[Optional[str], int, bool]:
    """(spec, classes, attributes) of the evaluator feature metrics would read, or (None, 0,
    False): a domain evaluator as the report finds one, else Inception when its weights are
    here (never a download)."""
    extractor, spec = find_evaluator(folder.config)
    if extractor is not None:
        return spec, extractor.n_classes, bool(extractor.multi_label)
    from ganforge.metrics.inception import find_weights

    try:
        weights = find_weights()
    except GanforgeError:  # $GANFORGE_INCEPTION_WEIGHTS names a missing file
        weights = None
    return ("inception", 0, False) if weights is not None else (None, 0, False)


def _reference_split(cfg: Config) -> str:
    """``test`` unless the data has no test split (an arrays file without x_test): then the
    training split, which the hint then names. Only data that costs nothing to build is tried;
    the others all have a test split."""
    if not cheap_to_build(cfg.data.name):
        return "test"
    try:
        build_dataset(replace(cfg.data, split="test", limit=None))
    except GanforgeError:
        return "train"
    return "test"


def read_traits(folder: RunFolder) -> Optional[RunTraits]:
    """What the run in ``folder`` supports; None without a model record (``model.json``)."""
    record = folder.model
    if not record:
        return None
    cfg = load_config(folder.path)
    k = int(record.get("n_classes") or 0)
    condition = "none" if not k else ("vectors" if record.get("multi_label") else "classes")
    image = len(record.get("data_shape", [])) == 3
    spec, classes, attributes = _evaluator(folder, cfg) if image else (None, 0, False)
    return RunTraits(folder.path, cfg, image, condition, k,
                     example_row(record) if condition == "vectors" else None, spec, classes,
                     attributes, _reference_split(cfg))


# --------------------------------------------------------------------------------------------
# The next commands
# --------------------------------------------------------------------------------------------

def _row_flag(row: list[float]) -> list[str]:
    text = ",".join(f"{v:.4g}" for v in row)
    # "--condition=-0.5,1": a value starting with '-' could read as an option.
    return [f"--condition={text}"] if text.startswith("-") else ["--condition", text]


# What `generate` is asked for, by the run's kind of condition.
GENERATE_FLAGS: dict[str, Callable[[RunTraits], list[str]]] = {
    "none": lambda t: ["--n", str(t.cfg.log.grid_samples)],
    "classes": lambda t: ["--per-class", str(t.cfg.log.grid_columns)],
    "vectors": lambda t: _row_flag(t.example_row or []) + ["--n", str(t.cfg.log.grid_samples)],
}


def _fits(check: Callable[[Optional[str]], Any], toy: Optional[str]) -> bool:
    """Whether a toy set's metric accepts ``toy`` (its own lookup raises when it does not)."""
    try:
        check(toy)
    except GanforgeError:
        return False
    return True


def _features(t: RunTraits) -> bool:
    return t.image and t.evaluator is not None


# The metrics `evaluate` is suggested, in order, each with when it applies to a run.
SUGGESTED_METRICS: dict[str, Callable[[RunTraits], bool]] = {
    "fid": _features,
    "kid": _features,
    "pr": _features,
    "label-acc": lambda t: _features(t) and t.condition == "classes"
    and t.evaluator_classes == t.n_classes and not t.evaluator_attributes,
    "attr-acc": lambda t: _features(t) and t.condition == "vectors" and t.evaluator_attributes
    and t.evaluator_classes == t.n_classes,
    "toy-2d": lambda t: t.toy is not None and _fits(toy_modes, t.toy),
    "condition-fit": lambda t: t.condition == "vectors" and t.toy is not None
    and _fits(condition_targets, t.toy),
    "parzen": lambda t: not _features(t),
}


def _tensorboard(t: RunTraits) -> list[str]:
    # The parent folder: TensorBoard finds this run's tb/ and its neighbours' for comparison.
    return ["tensorboard", "--logdir", str(t.path.parent)]


# One command per experiment tracker that has a local viewer to open.
TRACKER_HINTS: dict[str, Callable[[RunTraits], list[str]]] = {"tensorboard": _tensorboard}


def next_commands(t: RunTraits) -> list[list[str]]:
    """The commands to try after training, as argument lists (each runs as it is)."""
    run = str(t.path)
    commands = [["ganforge", "generate", run, *GENERATE_FLAGS[t.condition](t),
                 "--out", f"{t.path.name}-samples.png"]]
    metrics = [name for name, applies in SUGGESTED_METRICS.items() if applies(t)]
    evaluate = ["ganforge", "evaluate", run, "--metrics", ",".join(metrics),
                "--n", str(t.cfg.eval.final_samples)]
    if t.image and t.evaluator is not None and t.evaluator != f"{t.cfg.data.name}-lenet":
        evaluate += ["--evaluator", t.evaluator]  # evaluate reads <dataset>-lenet by default
    if t.split != "test":
        evaluate += ["--split", t.split]
    commands.append(evaluate)
    fmt = next((f for f in EXPORT_PREFERENCE if not missing_modules(f)), None)
    if fmt is not None:
        commands.append(["ganforge", "export", run, "--format", fmt,
                         "--out", f"{t.path.name}{EXPORT_PREFERENCE[fmt]}"])
    commands += [TRACKER_HINTS[name](t) for name in t.cfg.log.trackers if name in TRACKER_HINTS]
    return commands


def evaluator_note(t: RunTraits) -> Optional[str]:
    """Why FID/KID/PR are not suggested for an image run, and how to get them; else None."""
    if not t.image or t.evaluator is not None:
        return None
    data = t.cfg.data
    train = ["ganforge", "train-evaluator", "--dataset", data.name]
    if data.root:
        train += ["--data-root", str(data.root)]
    looked = ", ".join(evaluator_candidates(t.cfg.to_dict()))
    return (f"none of {data.name} images here (looked for {looked}), so no FID, KID or PR: "
            f"train one with `{shlex.join(train)}` (labelled images), or get the Inception "
            "weights and pass --evaluator inception")


# --------------------------------------------------------------------------------------------
# Scores and the summary
# --------------------------------------------------------------------------------------------

def newest_step(folder: RunFolder) -> Optional[int]:
    """The step of the run's newest checkpoint (``summary.json``'s steps without one)."""
    if folder.checkpoint_step is not None:
        return folder.checkpoint_step
    steps = (folder.summary or {}).get("steps")
    return int(steps) if isinstance(steps, int) else None


def measured(result: dict[str, Any], newest: Optional[int]) -> tuple[tuple[int, int], str]:
    """(sort key, text): which model a score measured, from its ``model`` entry. The key puts
    the run's newest model first, then other steps (newest first), then unknown ones (files
    written before the entry)."""
    model = result.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("step"), int):
        return (2, 0), "step unknown"
    step = model["step"]
    if newest is not None and step < newest:
        return (1, -step), f"step {step}, an earlier model: the run is now at step {newest}"
    if newest is not None and step > newest:
        return (1, -step), f"step {step}, past the run's newest checkpoint (step {newest})"
    return (0, 0), f"step {step}, {'EMA G' if model.get('ema') else 'G'}"


def metric_lines(folder: RunFolder) -> list[str]:
    """``metric:`` lines: scores of the newest model first, then those of other or unknown
    models, each saying which; the last in-loop values when nothing was scored."""
    newest = newest_step(folder)
    scored = sorted((*measured(result, newest), name, result)
                    for name, result in folder.evaluations.items())
    lines = []
    for _, which, name, result in scored:
        details = result.get("details") or {}
        notes = [which]
        if details.get("worst_class_acc") is not None:
            notes.append(f"worst class {details['worst_class_acc']:.3f}")
            if details.get("disagreement") is not None:
                notes.append(f"evaluators disagree on {details['disagreement']:.1%}")
        value = result.get("value")  # NaN and inf are saved as null (strict JSON)
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "not a finite number"
        lines.append(f"metric:     {name} = {shown} ({'; '.join(notes)})")
        for line in (per_class_line(details), protocol_line(result.get("protocol") or {})):
            if line:
                lines.append(f"{INDENT}{line}")
    if not folder.evaluations:
        keys = {k for record in folder.records for k in record if k.startswith("Metrics/")}
        last = {k[len("Metrics/"):]: folder.last(k) for k in keys}
        lines += [f"metric:     {k} = {v:.4g} (in-loop)" for k, v in sorted(last.items())
                  if v is not None]
    return lines


def closing_summary(run_dir: str | Path) -> str:
    """The lines a training run ends with: its folder and report, its scores (``eval.final``
    or ``ganforge evaluate`` in ``metrics.json``, else the last in-loop metrics) and the next
    commands to try, each built from what the run supports."""
    run_dir = Path(run_dir)
    folder = RunFolder.read(run_dir)
    lines = [f"run folder: {run_dir}"]
    if (run_dir / REPORT_FILE).is_file():
        lines.append(f"report:     {run_dir / REPORT_FILE}  (open it in a browser)")
    lines += metric_lines(folder)
    traits = read_traits(folder)
    if traits is not None:
        commands = [shlex.join(argv) for argv in next_commands(traits)]
        lines += [f"{'next:':12s}{command}" if i == 0 else f"{INDENT}{command}"
                  for i, command in enumerate(commands)]
        note = evaluator_note(traits)
        if note:
            lines.append(f"{'evaluator:':12s}{note}")
    return "\n".join(lines)

