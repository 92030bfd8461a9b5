"""Do the MNIST evaluators read generated digits as a person does? The done-when measurement.

Run from the repository root, in this order::

    # 1. A 5-minute cgan-mnist (a fixed step budget: ~3,500 img/s x 5 min at batch 256)
    .venv/bin/ganforge train --preset cgan-mnist --data-root ../shared/data \\
        --set data.split=test --set train.threads=2 --set train.epochs=none --steps 4000 \\
        --seed 0 --out RUN
    # 2. The evaluators: recipe v2 (the default) and the clean-trained recipe v1 for comparison
    .venv/bin/ganforge train-evaluator --dataset mnist --data-root ../shared/data --out EV/v2
    .venv/bin/ganforge train-evaluator --dataset mnist --data-root ../shared/data \\
        --augment affine --epochs 6 --out EV/v1
    # 3. 10,000 samples, and the person's subset as numbered grids without any label
    .venv/bin/python benchmarks/evaluator_reading.py grids --run RUN --work WORK
    # 4. A person reads WORK/grid-*.png and writes the digits into a labels file (see below)
    # 5. Score: every evaluator on all samples and on the subset, against the person's reading
    .venv/bin/python benchmarks/evaluator_reading.py score --run RUN --work WORK \\
        --new EV/v2/mnist-lenet.json --old EV/v1/mnist-lenet.json \\
        --labels benchmarks/results/evaluator_reading_labels.json

The samples: ``ganforge generate RUN --n 10000 --format npz --seed 0`` (labels cycle over the
ten digits). The person's subset: the first ``--per-class`` (30) samples of each conditioning
label, shown in shuffled order (seed 0) in grids of 100 with only a running number, so the
reader sees neither the label the sample was made for nor any evaluator's answer. The labels
file maps each running number to the digit read, or "?" for a sample that is no digit; "?"
counts as not the conditioning label.

Target: the v2 evaluator's label accuracy on the subset is within 0.02 of the person's. The
person's reading is scored three ways (first choice, expected, lenient: see
:func:`person_readings`), since ~20% of young-generator samples are ambiguous to a person.
Writes ``results/evaluator_reading.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import report  # benchmarks/report.py (this folder is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.02
N_SAMPLES = 10_000
CELL = 4  # display scale of a 28 px digit in the grids


def command_line(argv: list[str]) -> str:
    exe = Path(sys.executable)
    py = os.path.relpath(exe, REPO) if REPO in exe.parents else "python"
    return " ".join([py, "benchmarks/evaluator_reading.py", *map(shlex.quote, argv[1:])])


def samples(run: Path, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """10,000 samples of the run (uint8 (N, 1, 28, 28), labels (N,)), drawn once into WORK."""
    path = work / "samples.npz"
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        ganforge = Path(sys.executable).with_name("ganforge")
        subprocess.run([str(ganforge), "generate", str(run), "--n", str(N_SAMPLES), "--format",
                        "npz", "--seed", "0", "--device", "cpu", "--out", str(path)], check=True)
    with np.load(path) as npz:
        images, labels = npz["images"], npz["labels"].astype(np.int64)
    return (images[:, None] if images.ndim == 3 else images), labels


def subset(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Sample indices of the person's subset, in the (shuffled) order they are shown."""
    picked = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(10)])
    return picked[np.random.default_rng(0).permutation(len(picked))]


def cmd_grids(args: argparse.Namespace) -> int:
    from PIL import Image, ImageDraw

    images, labels = samples(args.run, args.work)
    order = subset(labels, args.per_class)
    side, pad, cols = 28 * CELL, 14, 10
    for page in range(0, len(order), 100):
        part = order[page:page + 100]
        rows = (len(part) + cols - 1) // cols
        canvas = Image.new("L", (cols * side, rows * (side + pad)), 90)
        draw = ImageDraw.Draw(canvas)
        for i, idx in enumerate(part):
            r, c = divmod(i, cols)
            digit = Image.fromarray(images[idx, 0]).resize((side - 4, side - 4), Image.NEAREST)
            canvas.paste(digit, (c * side + 2, r * (side + pad) + pad))
            draw.text((c * side + 3, r * (side + pad)), str(page + i), fill=255)
        canvas.save(args.work / f"grid-{page // 100}.png")
    np.save(args.work / "subset.npy", order)
    print(f"wrote {len(order)} samples in {args.work}/grid-*.png; read them into a labels file "
          "{\"labels\": {\"0\": \"7\", ...}} (running number -> digit or \"?\")")
    return 0


def predictions(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Predicted classes of the evaluator's primary net and its twin, by role."""
    import torch

    from ganforge.metrics.domain_evaluator import DomainEvaluator

    ev = DomainEvaluator(path, allow_old_recipe=True)  # v1 is loaded on purpose, to compare
    x = torch.from_numpy(images)
    out = {"primary": ev.features_and_logits(x)[1].argmax(1).numpy()}
    if ev.twin is not None:
        out["twin"] = ev.twin_logits(x).argmax(1).numpy()
    return out


def label_acc_result(path: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The ``label-acc`` metric's result on these samples (as ``ganforge evaluate`` reports it)."""
    from dataclasses import asdict

    import torch

    from ganforge.metrics import EvalContext
    from ganforge.metrics.base import METRICS
    from ganforge.metrics.domain_evaluator import DomainEvaluator

    ctx = EvalContext(torch.from_numpy(images), torch.from_numpy(labels),
                      extractor_spec=DomainEvaluator(path, allow_old_recipe=True))
    result = asdict(METRICS.get("label-acc")(ctx))
    result["details"].pop("confusion")
    return result


def person_readings(read: dict[str, Any], cond: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample credit of the person's reading of the subset, scored three ways.

    - "first choice": 1 when the digit written down is the conditioning label ("?" is not);
    - "expected": a reader who picks uniformly among the digits the sample could plausibly
      be ("candidates", noted for each ambiguous sample): 1/|candidates| when the label is one
      of them; a "?" sample without candidates counts 1/10 (a blind guess);
    - "lenient": 1 when the label is among the plausible digits.

    Also ``confident``: the samples read without doubt (not "?", not in "uncertain").
    """
    n = len(cond)
    first = np.array([read["labels"][str(i)] for i in range(n)])
    label = cond.astype(str)
    candidates = read.get("candidates", {})
    expected, lenient = (first == label).astype(float), (first == label).astype(float)
    for key, digits in candidates.items():
        i = int(key)
        expected[i] = (1 / len(digits) if label[i] in digits else 0.0) if digits else 0.1
        lenient[i] = float(label[i] in digits)
    confident = (first != "?") & ~np.isin(np.arange(n), read.get("uncertain", []))
    return {"digits": first, "first choice": (first == label).astype(float),
            "expected": expected, "lenient": lenient, "confident": confident}


def cmd_score(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    torch.set_num_threads(args.threads)
    machine = report.machine_info(args.threads)
    images, labels = samples(args.run, args.work)
    order = np.load(args.work / "subset.npy")
    read = json.loads(args.labels.read_text())
    cond = labels[order]
    person = person_readings(read, cond)
    sure = person["confident"]
    evaluators: dict[str, Any] = {}
    recipes = [("v2", args.new)] + ([("v1", args.old)] if args.old else [])
    every = {recipe: predictions(path, images) for recipe, path in recipes}
    for recipe, preds in every.items():
        for role, pred in preds.items():
            right = pred[order] == cond
            evaluators[f"{recipe} {role}"] = {
                "accuracy_10k": float((pred == labels).mean()),
                "accuracy_subset": float(right.mean()),
                "accuracy_confident": float(right[sure].mean()),
                "agrees_with_person_subset": float((pred[order].astype(str)
                                                    == person["digits"]).mean()),
                "per_class_10k": [float((pred[labels == k] == k).mean()) for k in range(10)],
                # Which digit the misread samples are taken for (shares of the misreadings).
                "misread_as_10k": (np.bincount(pred[pred != labels], minlength=10)
                                   / max(int((pred != labels).sum()), 1)).tolist()}
        if "twin" in preds:
            differ = preds["primary"] != preds["twin"]
            evaluators[f"{recipe} pair"] = {
                "disagreement_10k": float(differ.mean()),
                "disagreement_subset": float(differ[order].mean()),
                "disagreement_confident": float(differ[order][sure].mean()),
                "disagreement_ambiguous": float(differ[order][~sure].mean()),
                "both_right_subset": float(((preds["primary"] == labels)
                                            & (preds["twin"] == labels))[order].mean())}
    v2 = evaluators["v2 primary"]["accuracy_subset"]
    readings = {name: {"accuracy_subset": float(person[name].mean()),
                       "v2_gap": abs(v2 - float(person[name].mean())),
                       "pass": abs(v2 - float(person[name].mean())) <= TARGET}
                for name in ("first choice", "expected", "lenient")}
    config = json.loads((args.run / "config.json").read_text())
    summary = json.loads((args.run / "summary.json").read_text())
    res = {
        "benchmark": "evaluator_reading", "command": command_line(argv),
        "run": {"preset": config["name"], "data_split": config["data"]["split"],
                "steps": summary["steps"], "batch_size": config["train"]["batch_size"],
                "threads": config["train"]["threads"], "seed": config["train"]["seed"],
                "elapsed_s": summary["elapsed_s"], "images_per_s_final": summary["images_per_s"]},
        "evaluators_made_by": {
            "v2": "ganforge train-evaluator --dataset mnist --data-root ../shared/data",
            **({"v1": "ganforge train-evaluator --dataset mnist --data-root ../shared/data "
                      "--augment affine --epochs 6"} if args.old else {})},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine,
        "loadavg_end": list(os.getloadavg()), "n_samples": int(len(labels)),
        "subset_size": int(len(order)), "how_read": read.get("how"), "note": args.note,
        "how_candidates": read.get("how_candidates"),
        "person": {"readings": readings,
                   "unreadable_subset": float((person["digits"] == "?").mean()),
                   "confident_subset": int(sure.sum()),
                   "accuracy_confident": float(person["first choice"][sure].mean()),
                   "per_class_subset": [float(person["first choice"][cond == k].mean())
                                        for k in range(10)]},
        "evaluators": evaluators, "target": TARGET,
        "label_acc_metric": {recipe: label_acc_result(path, images, labels)
                             for recipe, path in recipes},
        "disputed": disputed(order, cond, person["digits"], every),
    }
    from ganforge import fileio

    # Dataset sources name absolute folders; the results say them relative to the repository.
    text = json.dumps(res, indent=2).replace(str(REPO.parent) + os.sep, ".." + os.sep)
    fileio.write_text(args.out_dir / f"{args.stem}.json", text + "\n")
    fileio.write_text(args.out_dir / f"{args.stem}.md", render(res))
    v1 = evaluators.get("v1 primary", {}).get("accuracy_subset")
    print(f"person {readings}, v2 {v2:.4f}" + (f", v1 {v1:.4f}" if v1 is not None else "")
          + f" on the subset; wrote {args.out_dir / args.stem}.md")
    return 0


def disputed(order: np.ndarray, cond: np.ndarray, person: np.ndarray,
             every: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Subset samples where the label, the person or any evaluator differ (for the record)."""
    rows = []
    for i, idx in enumerate(order):
        answers = {f"{r} {role}": str(p[idx]) for r, pr in every.items() for role, p in pr.items()}
        if len({str(cond[i]), person[i], *answers.values()}) > 1:
            rows.append({"number": i, "sample": int(idx), "label": int(cond[i]),
                         "person": str(person[i]), **answers})
    return rows


def render(res: dict[str, Any]) -> str:
    m, ev, p, r = res["machine"], res["evaluators"], res["person"], res["run"]
    readings, n_sure = p["readings"], p["confident_subset"]
    out = [
        "# Reading generated digits: evaluators against a person (5-minute cgan-mnist)", "",
        f"Command: `{res['command']}`  ", f"Date (UTC): {res['date']}  ",
        f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores ({m['usable_cores']} "
        f"usable), torch {m['torch']}, ganforge commit {m['ganforge_commit']} (+ working-tree "
        f"changes); threads {m['threads']}; load average at start {m['loadavg_start'][0]:.2f}, "
        f"at end {res['loadavg_end'][0]:.2f}", "",
        f"Samples: `{r['preset']}` trained on the MNIST {r['data_split']} split for "
        f"{r['steps']} steps at batch {r['batch_size']} (seed {r['seed']}, "
        f"{r['threads']} thread(s), {r['elapsed_s']:.0f} s on the shared machine), 10,000 "
        "samples from `ganforge generate RUN --n 10000 --format npz --seed 0`. Evaluators: v2 "
        f"`{res['evaluators_made_by']['v2']}`"
        + (f", v1 `{res['evaluators_made_by']['v1']}`, i.e. "
           "the clean-trained recipe v1 reproduced (its JSON records recipe 2 with augment "
           "'affine', which the loader refuses unless allowed); the seed-0 runs of "
           "`benchmarks/evaluator_mnist.py --recipes v2 v1`, same code path."
           if "v1" in res["evaluators_made_by"] else " (no clean-trained v1 in this run)."),
        "",
        *([f"Note: {res['note']}", ""] if res.get("note") else []),
        "How the person read: " + (res["how_read"] or "(not given)"), "",
        "Candidates of ambiguous samples: " + (res["how_candidates"] or "(none)"), "",
        "## Target: v2 label accuracy within 0.02 of the person's reading", "",
        f"The v2 evaluator reads {ev['v2 primary']['accuracy_subset']:.4f} of the "
        f"{res['subset_size']} subset samples as their label. The person's reading, scored "
        "three ways (see `person_readings` in the script):", "",
        "| person's reading | accuracy | v2 - person | within 0.02 |", "|---|---|---|---|",
    ]
    for name, rd in readings.items():
        out.append(f"| {name} | {rd['accuracy_subset']:.4f} | {rd['v2_gap']:.4f} | "
                   f"{'PASS' if rd['pass'] else 'FAIL'} |")
    out += ["", f"On the {n_sure} samples the person read without doubt, the person reads "
            f"{p['accuracy_confident']:.4f} as their label, v2 "
            f"{ev['v2 primary']['accuracy_confident']:.4f}"
            + (f", v1 {ev['v1 primary']['accuracy_confident']:.4f}" if "v1 primary" in ev
               else "") + ".", "",
            f"## Label accuracy ({res['n_samples']:,} samples, the subset, its confident part)", "",
            "| reader | all samples | subset | confident part | agrees with the person (subset) |",
            "|---|---|---|---|---|",
            f"| person (first choice) | — | {readings['first choice']['accuracy_subset']:.4f} "
            f"({p['unreadable_subset']:.1%} no digit) | {p['accuracy_confident']:.4f} | — |"]
    for name, e in ev.items():
        if "accuracy_10k" in e:
            out.append(f"| {name} | {e['accuracy_10k']:.4f} | {e['accuracy_subset']:.4f} | "
                       f"{e['accuracy_confident']:.4f} | {e['agrees_with_person_subset']:.4f} |")
    out += ["", "| pair | disagreement, all samples | subset | confident part | ambiguous part "
            "| both nets right (subset) |", "|---|---|---|---|---|---|"]
    out += [f"| {name} | {e['disagreement_10k']:.4f} | {e['disagreement_subset']:.4f} | "
            f"{e['disagreement_confident']:.4f} | {e['disagreement_ambiguous']:.4f} | "
            f"{e['both_right_subset']:.4f} |" for name, e in ev.items() if "disagreement_10k" in e]
    out += ["", "Per class, all samples (v1 and v2 primary; the person's first choice on the "
            "subset):", "",
            "| digit | " + " | ".join(str(k) for k in range(10)) + " |", "|---" * 11 + "|",
            *(["| v1 | " + " | ".join(f"{a:.3f}" for a in ev["v1 primary"]["per_class_10k"])
                + " |"] if "v1 primary" in ev else []),
            "| v2 | " + " | ".join(f"{a:.3f}" for a in ev["v2 primary"]["per_class_10k"]) + " |",
            "| person | " + " | ".join(f"{a:.3f}" for a in p["per_class_subset"]) + " |", "",
            "What the misread samples are taken for (share of each recipe's misreadings, all "
            "samples):", "", "| digit | " + " | ".join(str(k) for k in range(10)) + " |",
            "|---" * 11 + "|",
            *(["| v1 | " + " | ".join(f"{a:.3f}" for a in ev["v1 primary"]["misread_as_10k"])
                + " |"] if "v1 primary" in ev else []),
            "| v2 | " + " | ".join(f"{a:.3f}" for a in ev["v2 primary"]["misread_as_10k"]) + " |",
            "",
            f"## Disputed subset samples ({len(res['disputed'])})", "",
            "Running number in the grids, the sample's index, its conditioning label, the "
            "person's first choice and each evaluator's answer.", ""]
    if res["disputed"]:
        keys = list(res["disputed"][0])
        out += ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    for row in res["disputed"]:
        out.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for name in ("grids", "score"):
        p = sub.add_parser(name)
        p.add_argument("--run", type=Path, required=True, help="the cgan-mnist run folder")
        p.add_argument("--work", type=Path, required=True, help="folder for samples and grids")
        p.add_argument("--per-class", type=int, default=30)
    score = sub.choices["score"]
    score.add_argument("--new", type=Path, required=True, help="recipe v2 evaluator .json")
    score.add_argument("--old", type=Path, help="recipe v1 evaluator .json (optional: the "
                       "clean-trained recipe, for comparison)")
    score.add_argument("--stem", default="evaluator_reading",
                       help="result file names: OUT_DIR/STEM.{json,md}")
    score.add_argument("--labels", type=Path, required=True, help="the person's reading")
    score.add_argument("--threads", type=int, default=2)
    score.add_argument("--out-dir", type=Path, default=RESULTS)
    score.add_argument("--note", help="a remark on how this measurement was run, for the report")
    args = parser.parse_args(argv[1:])
    return cmd_grids(args) if args.step == "grids" else cmd_score(args, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
