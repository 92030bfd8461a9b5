"""The model card (``README.md``) of a hub export: what the generator is, how it was trained,
how well it does and how to use it, from the run folder's own files.

The card is Markdown with the Hub's YAML header. Its numbers come from the run folder:
``summary.json`` (steps, epochs, time), ``config.json`` (data and settings), ``metrics.json``
(``ganforge evaluate`` results, each with its protocol) and ``stats.jsonl`` (in-loop
``Metrics/*``). Nothing is measured here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Optional

from ganforge.run.folder import RunFolder, flatten
from ganforge.run.hub import HUB_SAMPLES, LIBRARY

if TYPE_CHECKING:
    from ganforge.run.loaded import Run

# Settings worth a line of the card; the full resolved config is in config.json.
CARD_SETTINGS = ("data.name", "data.split", "data.image_size", "data.channels", "data.limit",
                 "model.arch", "model.conditional", "model.z_dim", "model.z_dist",
                 "model.d_label", "loss.name", "optim.name", "optim.lr_g", "optim.lr_d",
                 "train.batch_size", "train.steps", "train.epochs", "train.minutes",
                 "train.ema", "train.seed", "train.amp")


def io_rows(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, shape and type, meaning) of the generator's inputs and its output."""
    z = (f"N({record.get('z_mean', 0.0):g}, 1)" if record["z_dist"] == "normal"
         else "U(-1, 1)")
    rows = [("z", f"(N, {record['z_dim']}) float32", f"latents drawn from {z}")]
    k = record["n_classes"]
    scaled_y = bool((record.get("scaling") or {}).get("y"))
    if k and record.get("multi_label"):
        units = "in the data's units" if scaled_y else "0/1 attributes or values"
        rows.append(("labels", f"(N, {k}) float32", f"one condition row per sample, {units}"))
    elif k:
        rows.append(("labels", "(N,) int64", f"class of each sample, 0..{k - 1}"))
    shape = record["data_shape"]
    if len(shape) == 3:
        rows.append(("images (output)", f"(N, {shape[0]}, {shape[1]}, {shape[2]}) float32",
                     "pixels in [-1, 1]: uint8 = round((x + 1) * 127.5)"))
    else:
        units = ("the data's original units" if (record.get("scaling") or {}).get("x")
                 else "the data's units")
        rows.append(("vectors (output)", f"(N, {shape[0]}) float32", f"samples in {units}"))
    return rows


def python_call(record: dict[str, Any]) -> str:
    """The card's example call of ``Run.generate`` for this kind of generator."""
    if record.get("multi_label"):
        return (f"x = run.generate(labels=rows, seed=0)  # rows: (N, {record['n_classes']}) "
                "condition rows")
    if record["n_classes"]:
        return "x = run.generate(labels=[0, 1, 2], seed=0)  # one sample per label"
    return "x = run.generate(n=16, seed=0)"


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
            ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def protocol_text(protocol: dict[str, Any]) -> str:
    """A metric's protocol in one line: counts, reference, extractor, seed."""
    parts = [f"{protocol.get('n_fake')} samples"]
    if protocol.get("n_real"):
        parts[0] += f" vs {protocol['n_real']} real"
    ref = protocol.get("reference") or {}
    if ref:
        parts.append(f"reference {ref.get('dataset')} ({ref.get('split')})")
    if protocol.get("extractor"):
        parts.append(f"extractor {protocol['extractor']} "
                     f"(sha256 {str(protocol.get('extractor_sha256', ''))[:12]})")
    parts.append(f"seed {protocol.get('seed')}")
    return "; ".join(parts)


def metric_lines(folder: Optional[RunFolder]) -> list[str]:
    """The card's metrics: ``ganforge evaluate`` results, then in-loop values."""
    evaluations = folder.evaluations if folder is not None else {}
    lines: list[str] = []
    if evaluations:
        rows = [(name, f"{r['value']:.5g}" if isinstance(r.get("value"), (int, float))
                 else r.get("value"), protocol_text(r.get("protocol") or {}))
                for name, r in evaluations.items()]
        lines += ["Scored with `ganforge evaluate` (the run's `metrics.json`):", ""]
        lines += _table(("metric", "value", "protocol"), rows) + [""]
    in_loop = sorted({k for r in (folder.records if folder else []) for k in r
                      if k.startswith("Metrics/")})
    if in_loop and folder is not None:
        ev = folder.config.get("eval", {})
        extractor = ev.get("extractor") or f"{folder.config['data']['name']}-lenet"
        rows = []
        for key in in_loop:
            steps = [(r["step"], r[key]) for r in folder.records
                     if r.get(key) is not None and r[key] == r[key]]
            if steps:
                rows.append((key[len("Metrics/"):], f"{steps[-1][1]:.5g}", steps[-1][0]))
        lines += [f"Measured while training (`stats.jsonl`; {ev.get('samples')} samples from "
                  f"fixed latents against the training data, extractor {extractor}):", ""]
        lines += _table(("metric", "last value", "at step"), rows) + [""]
    if not lines:
        lines = ["No metrics were computed for this run. Score it with e.g. "
                 "`ganforge evaluate FOLDER --metrics fid,kid` (a domain evaluator or "
                 "`--evaluator inception`).", ""]
    return lines


def model_card(run: "Run", folder: Optional[RunFolder], samples: bool) -> str:
    """The ``README.md`` of a hub export of ``run``.

    Args:
        run: the loaded run (its G is what the folder holds).
        folder: the run folder's files (summary, metrics, stats), or None when unavailable.
        samples: ``samples.png`` is written beside the card.
    """
    record, config = run.record, run.config
    name = run.path.name
    image = len(record["data_shape"]) == 3
    task = ("unconditional-image-generation" if image and not record["n_classes"]
            else "image-generation" if image else "tabular-generation")
    tags = ["gan", LIBRARY, record["arch"], config["loss"]["name"], task]
    lines = ["---", f"library_name: {LIBRARY}", "tags:"] + [f"- {t}" for t in tags]
    lines += ["---", "", f"# {name}", ""]
    summary = folder.summary if folder is not None else None
    trained = f"{run.step} steps"
    if summary:
        seconds = float(summary.get("elapsed_s", 0))
        took = f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.0f} s"
        trained += f" ({summary.get('epochs', 0):.3g} epochs, {took} on {summary.get('device')})"
    what = (f"conditioned on {record['n_classes']} "
            f"{'condition columns' if record.get('multi_label') else 'classes'}"
            if record["n_classes"] else "unconditional")
    lines += [f"A `{record['arch']}` generator ({what}) trained with {LIBRARY} "
              f"(`{config['loss']['name']}` loss) on `{record.get('dataset')}` for {trained}. "
              + ("The weights are the exponential moving average of G "
                 f"(train.ema = {config['train']['ema']})." if run.uses_ema
                 else "The weights are G's own (the run kept no EMA copy)."), ""]
    if config.get("description"):
        lines += [f"Preset `{config['name']}`: {config['description']}", ""]
    if record.get("class_names"):
        lines += ["Classes: " + ", ".join(f"`{c}`" for c in record["class_names"]), ""]
    if samples:
        lines += [f"![Samples of this generator]({HUB_SAMPLES})", ""]
    lines += ["## Use", "", "```bash", f"pip install {LIBRARY}",
              "ganforge generate FOLDER --n 64 --out grid.png",
              "ganforge export FOLDER --format onnx --out generator.onnx  # runs without ganforge",
              "```", "", "```python", "import ganforge", "", 'run = ganforge.load_run("FOLDER")',
              python_call(record), "```", "", "## Inputs and outputs", ""]
    lines += _table(("tensor", "shape", "meaning"), io_rows(record)) + [""]
    flat = flatten(config)
    lines += ["## Training", ""]
    lines += _table(("setting", "value"), [(k, json.dumps(flat[k])) for k in CARD_SETTINGS
                                           if k in flat]) + [""]
    lines += ["The full resolved config is `config` in `config.json`.", "", "## Metrics", ""]
    lines += metric_lines(folder)
    return "\n".join(lines) + "\n"
