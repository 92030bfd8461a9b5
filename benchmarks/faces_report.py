"""Pictures and tables of ``benchmarks/faces.py``: small PNGs (grids, flips, critic curves) and
``faces_cpu.{json,md}``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

PNG_LIMIT = 300_000  # bytes: committed pictures stay small
REPO = Path(__file__).resolve().parents[1]
FOCUS = ("Smiling", "Eyeglasses", "Male", "Blond_Hair", "Young", "Wearing_Hat", "Bald")


def shown_path(path: str | Path) -> str:
    """A path as results show it: relative to the repository, or with the home folder as ~."""
    full = Path(path).resolve()
    for base, label in ((REPO, ""), (Path.home(), "~/")):
        try:
            return label + str(full.relative_to(base))
        except ValueError:
            continue
    return str(full)


def save_small_png(array: np.ndarray, path: Path) -> dict[str, Any]:
    """Save an (H, W, 3) uint8 picture as PNG, halving it until it is under :data:`PNG_LIMIT`."""
    from PIL import Image

    img = Image.fromarray(array)
    while True:
        img.save(path, optimize=True)
        size = path.stat().st_size
        if size <= PNG_LIMIT or min(img.size) < 64:
            return {"png": shown_path(path), "bytes": size, "pixels": list(img.size)}
        img = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


# ----------------------------------------------------------------------------- pictures

def save_grid(run_dir: Path, path: Path, n: int) -> dict[str, Any]:
    """A square grid of ``n`` samples of a run's final G (fixed seed)."""
    from ganforge.run.loaded import load_run

    run = load_run(run_dir)
    labels = None
    if run.multi_label:  # attribute rows of the data, one per sample
        labels = data_rows(run_dir, n)
    return save_small_png(run.grid(n=n, labels=labels, seed=0), path)


def data_rows(run_dir: Path, n: int, seed: int = 0) -> Any:
    """``n`` attribute rows of a run's own data (seeded draw)."""
    import torch

    from ganforge.data import build_dataset
    from ganforge.run.loaded import load_config

    data = build_dataset(load_config(run_dir).data)
    pick = torch.randint(0, len(data.y), (n,), generator=torch.Generator().manual_seed(seed))
    return data.y[pick].float()


def save_flips(run: Any, ref: Any, out: Path, preset: str, attributes: Sequence[str]
               ) -> list[dict[str, Any]]:
    """The report's flip grids (each attribute off and on, z and the rest fixed) as PNGs."""
    import torch

    from ganforge.data import build_dataset
    from ganforge.reporting.generated import SampleSource, attribute_flips

    data = build_dataset(ref)
    pick = torch.randint(0, len(data.y), (4,), generator=torch.Generator().manual_seed(0))
    source = SampleSource(run.generator, run.noise, 0, run.class_names, run.step,
                          "final G", True, data.y[pick].float())
    saved = []
    for name, grid in attribute_flips(source, attributes):
        saved.append({"attribute": name,
                      **save_small_png(grid, out / f"{preset}_flip_{name}.png")})
    return saved


def critic_curves(run_dir: Path, path: Path) -> dict[str, Any]:
    """W-distance and gradient-penalty curves of a WGAN-GP run (``stats.jsonl``), plotted."""
    from ganforge.fileio import read_jsonl
    from ganforge.imaging import agg_figure, figure_to_array

    records = read_jsonl(run_dir / "stats.jsonl")
    out: dict[str, Any] = {}
    fig = agg_figure(8, 3)
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("Critic/W-distance", "Loss/D/gp")):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, lw=1, marker="o" if len(values) < 20 else None, ms=3)
            out[key] = {"first": values[0], "last": values[-1], "min": min(values),
                        "max": max(values), "lines": len(values)}
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("G step", fontsize=8)
    fig.tight_layout()
    out.update(save_small_png(figure_to_array(fig)[..., :3], path))
    return out


# ----------------------------------------------------------------------------- tables

def evaluator_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """What the results keep of an evaluator: sizes, means, recipe and every attribute."""
    keys = ("name", "task", "recipe_version", "train_size", "heldout_size", "heldout_accuracy",
            "heldout_balanced_accuracy", "majority_baseline", "corrupted_accuracy",
            "corrupted_balanced_accuracy", "per_attribute", "input_shape", "sha256")
    out = {k: meta.get(k) for k in keys}
    out["data"] = {k: v for k, v in (meta.get("data") or {}).items() if k != "source"}
    out["twin"] = {k: (meta.get("twin") or {}).get(k) for k in
                   ("heldout_accuracy", "heldout_balanced_accuracy", "majority_baseline")}
    out["training_s"] = (meta.get("training") or {}).get("seconds")
    return out


def _f(value: Optional[float], digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _evaluator_md(ev: dict[str, Any]) -> list[str]:
    lines = ["## The face evaluator", "",
             f"`{ev.get('name')}` (recipe v{ev.get('recipe_version')}, task {ev.get('task')}, "
             f"input {ev.get('input_shape')}, sha {str(ev.get('sha256'))[:8]}): trained on "
             f"{ev.get('train_size')} faces, {ev.get('heldout_size')} held out "
             f"({(ev.get('data') or {}).get('heldout')}); "
             f"{_f(ev.get('training_s'), 0)} s.", "",
             "| | accuracy | majority-class baseline | balanced accuracy |", "|---|---|---|---|",
             f"| mean of 40 | {_f(ev.get('heldout_accuracy'))} | "
             f"{_f(ev.get('majority_baseline'))} | {_f(ev.get('heldout_balanced_accuracy'))} |",
             f"| twin | {_f(ev['twin'].get('heldout_accuracy'))} | "
             f"{_f(ev['twin'].get('majority_baseline'))} | "
             f"{_f(ev['twin'].get('heldout_balanced_accuracy'))} |",
             f"| under the corruption suite (mean) | "
             f"{_f((ev.get('corrupted_accuracy') or {}).get('mean'))} | | "
             f"{_f((ev.get('corrupted_balanced_accuracy') or {}).get('mean'))} |", "",
             "Per attribute (held out):", "",
             "| attribute | positive | accuracy | majority baseline | balanced | TPR | TNR |",
             "|---|---|---|---|---|---|---|"]
    for name, r in (ev.get("per_attribute") or {}).items():
        lines.append(f"| {name} | {_f(r['positive_rate'], 3)} | {_f(r['accuracy'])} | "
                     f"{_f(r['majority_baseline'])} | {_f(r['balanced_accuracy'])} | "
                     f"{_f(r['tpr'])} | {_f(r['tnr'])} |")
    return lines + [""]


def _run_line(r: dict[str, Any]) -> str:
    return (f"{r['steps']} G steps in {_f(r.get('train_s'), 0)} s, load average "
            f"{_f(r['loadavg_before'][0], 2)} → {_f(r['loadavg_after'][0], 2)}")


def _scores_md(scores: dict[str, Any]) -> str:
    parts = []
    for name, s in scores.items():
        extra = f" (real faces {_f(s['real_is'], 2)})" if "real_is" in s else ""
        parts.append(f"`{name}` = {_f(s['value'], 2)}{extra}")
    return "; ".join(parts)


def render_markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = ["# Real faces on a CPU (CelebA, 12,000 faces)", "",
             f"Command: `{res['command']}`  ", f"Date (UTC): {res['date_utc']}  ",
             f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, "
             f"{m['threads']} torch threads; load average at start "
             f"{_f(m['loadavg_start'][0], 2)}, at end {_f(m['loadavg_end'][0], 2)}  ",
             f"Software: torch {m['torch']}, ganforge commit {m['ganforge_commit']}  ",
             *[f"Earlier command (parts kept): `{e['command']}` ({e['date_utc']}, load "
               f"{_f(e['machine']['loadavg_start'][0], 2)} → "
               f"{_f(e['machine']['loadavg_end'][0], 2)})  "
               for e in res.get("earlier_commands", [])],
             f"Total wall time {_f(res['wall_s'] / 60, 1)} min."
             + (" **Partial: the parts below are done, the run went on.**"
                if res.get("partial") else ""), ""]
    if "evaluator" in res:
        lines += _evaluator_md(res["evaluator"])
    if "wgan" in res:
        w = res["wgan"]
        lines += ["## Seed 004: `wgan-gp-celeba64`", "",
                  f"{_run_line(w)}. {_scores_md(w['scores'])}.", "", f"{w['note']}.", "",
                  f"![grid](faces/{Path(w['grid']['png']).name}) "
                  f"![curves](faces/{Path(w['curves']['png']).name})", ""]
    if "tuned" in res:
        t = res["tuned"]
        lines += ["## Tuned: `r3gan-celeba32` (time to quality)", "", f"{_run_line(t)}.", "",
                  "| minutes | checkpoint | FID |", "|---|---|---|"]
        lines += [f"| {p['minutes']:g} | {p['checkpoint']} | {_f(p['fid'], 2)} |"
                  for p in t["curve"]]
        lines += ["", f"![grid](faces/{Path(t['grid']['png']).name})", ""]
    if "attributes" in res:
        lines += ["## Attributes as the condition", "",
                  "Samples generated for the attribute rows of the faces the evaluator held "
                  "out, read back by the evaluator; the ceiling is those real faces' own "
                  "reading (same rows, same evaluator).", "",
                  "| preset | minutes | steps | attr-acc (mean balanced) | real faces | mean "
                  "accuracy | real faces | twin | disagreement | FID |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["attributes"]:
            a = r["attr_acc"]
            fid = next(iter(r["scores"].values()))["value"]
            lines.append(f"| {r['preset']} | {r['minutes']:g} | {r['steps']} | {_f(a['value'])} | "
                         f"{_f(a['real_balanced'])} | "
                         f"{_f(a['mean_accuracy'])} | {_f(a['real_accuracy'])} | "
                         f"{_f(a['twin_balanced'])} | {_f(a['disagreement'])} | {_f(fid, 2)} |")
        lines += ["", "Balanced accuracy per attribute (samples / real faces):", "",
                  "| attribute | " + " | ".join(r["preset"] for r in res["attributes"]) + " |",
                  "|---|" + "---|" * len(res["attributes"])]
        for name in FOCUS:
            cells = []
            for r in res["attributes"]:
                p = (r["attr_acc"].get("per_attribute") or {}).get(name, {})
                cells.append(f"{_f(p.get('balanced_accuracy'), 3)} / "
                             f"{_f(p.get('real_balanced_accuracy'), 3)}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        for r in res["attributes"]:
            pics = " ".join(f"![{f['attribute']}](faces/{Path(f['png']).name})"
                            for f in r["flips"])
            lines += [f"`{r['preset']}` ({_run_line(r)}), flips (left off, right on): {pics}",
                      ""]
    return "\n".join(lines) + "\n"


def write_results(res: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """``stem.json`` (everything) and ``stem.md`` (the tables) in ``out_dir``."""
    from ganforge import fileio

    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    fileio.write_json(json_path, res)
    fileio.write_text(md_path, render_markdown(res))
    return [json_path, md_path]


if __name__ == "__main__":  # rebuild the markdown from a results JSON
    import sys

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/faces_cpu.json")
    Path(os.path.splitext(path)[0] + ".md").write_text(
        render_markdown(json.loads(path.read_text())))
