"""One protocol for every benchmark: budget -> checkpoints at given times -> score -> record.

:class:`Protocol` runs the jobs of a :mod:`~ganforge.bench.spec`. A job trains a preset through
:func:`ganforge.api.train` (the spec's overrides, the seed, the threads, the budget, named
checkpoints at the curve's minutes) or a typical loop of :mod:`ganforge.bench.typical`; then
each named checkpoint and the final one is scored by :func:`ganforge.api.evaluate` (the same
seeded latents and labels for every model, against the spec's reference set, with one evaluator
loaded once), and the job becomes one :class:`~ganforge.bench.store.Record`:

* ``values``: the run's ``steps``, ``train_s``, ``images_per_s``, ``wall_s``, ``score_s`` and
  each scored point's numbers under ``"<minutes>min/<key>"`` (``"5min/fid"``);
* ``protocol``: the spec's protocol name, the kind of run, seed, budget, threads, whether it is
  conditional, the run it is held to, the dataset, the scorer (evaluator and its sha256,
  reference and its pixels' sha256, sample counts), the scored points and the run folder;
* ``machine``: CPU, cores, threads and the load average before and after training;
* for a preset, the fingerprint of the settings its run trained with (its ``config.json``).

The spec's floor — real images scored exactly like samples — is a record of kind ``floor``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ganforge import api
from ganforge.bench.spec import Job, RunSpec, Source, Spec
from ganforge.bench.store import Record, machine

# How a metric's result becomes record values: the quality tables' names for the classics;
# any other metric keeps its name, and its numeric details go under "<metric>.<detail>".
RENAMES: dict[str, dict[str, str]] = {
    "fid": {"": "fid"},
    "pr": {"precision": "precision", "recall": "recall"},
    "label-acc": {"": "acc", "worst_class_acc": "worst", "twin_acc": "twin_acc",
                  "disagreement": "disagreement", "per_class": "per_class"},
    "class-entropy": {"": "entropy", "min_class_share": "min_share", "histogram": "histogram"},
}


def flatten(results: dict[str, Any]) -> dict[str, Any]:
    """``api.evaluate``'s results as flat record values (see :data:`RENAMES`)."""
    out: dict[str, Any] = {}
    for name, result in results.items():
        renames = RENAMES.get(name)
        if renames is None:
            out[name] = result.value
            out.update({f"{name}.{k}": v for k, v in result.details.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
            continue
        for detail, key in renames.items():
            out[key] = result.value if detail == "" else result.details.get(detail)
    return out


def point_prefix(minutes: Optional[float]) -> str:
    """The record values' prefix of a point: ``"5min/"`` at 5 minutes, ``"final/"`` at the end
    of a budget of steps or epochs."""
    return "final/" if minutes is None else f"{minutes:g}min/"


def pixels_sha256(images: torch.Tensor) -> str:
    """SHA-256 of an image set's pixels (independent of any file's metadata)."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def write_npz(path: Path, images: torch.Tensor, labels: Optional[torch.Tensor]) -> Path:
    """``images`` (N, C, H, W) uint8 and ``labels`` as an npz, written once: its bytes key the
    cached reference statistics, so a second benchmark reuses them."""
    return path if path.is_file() else api.save_images(path, images, labels)


def load_source(source: Source) -> tuple[torch.Tensor, Optional[torch.Tensor], str]:
    """The images (N, C, H, W) uint8 and labels of a spec's dataset source, and its name."""
    parts = [api.load_dataset(source.dataset, split, source.root) for split in source.splits]
    cut = slice(source.skip, None if source.n is None else source.skip + source.n)
    x = torch.cat([p.x for p in parts])[cut]
    y = None if parts[0].y is None else torch.cat([p.y for p in parts])[cut]
    part = "" if cut == slice(0, None) else f", images {cut.start}..{cut.start + len(x) - 1}"
    return x, y, f"{source.dataset} ({' + '.join(source.splits)}{part})"


@dataclass
class Protocol:
    """Runs the jobs of one spec and turns each into a record.

    Args:
        spec: the checked spec.
        runs: the folder for run folders and the reference npz files.
        command: the command line recorded with every record.
        log: one line per event.
        evaluator: an extractor object in place of the spec's ``evaluator`` (tests).
    """

    spec: Spec
    runs: Path
    command: str
    log: Callable[[str], None] = print
    evaluator: Any = None

    def __post_init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.reference: Optional[Path] = None
        self._own: dict[str, tuple[Optional[Path], dict[str, Any]]] = {}  # by run name
        score = self.spec.score
        if score is None:
            return
        if self.evaluator is None and score.evaluator:
            self.evaluator = api.load_evaluator(score.evaluator, self.spec.device)
        self.info = {"n_samples": score.samples, "sample_seed": score.sample_seed}
        if self.evaluator is not None:
            self.info.update(evaluator=self.evaluator.name,
                             evaluator_sha256=self.evaluator.checksum,
                             evaluator_recipe=getattr(self.evaluator, "recipe_version", None))
        if score.reference is not None:
            self.reference, facts = self._reference(score.reference)
            self.info.update(facts)

    def _reference(self, source: Source) -> tuple[Path, dict[str, Any]]:
        """The npz of a spec's reference images, and what the records say of it."""
        if source.path is not None:
            return Path(source.path), {"reference": source.path}
        x, y, about = load_source(source)
        sha = pixels_sha256(x)
        facts = {"reference": about, "reference_pixels_sha256": sha,
                 "reference_n": min(len(x), self.spec.score.reference_n or len(x))}
        return write_npz(self.runs / f"reference-{sha[:12]}.npz", x, y), facts

    def scoring(self, run: RunSpec) -> tuple[Optional[Path], dict[str, Any]]:
        """The reference a run is scored against (None: its own data's test split) and the
        scorer's facts its record holds: the spec's, or those of the run's own reference
        (made once per run)."""
        if run.reference == "spec":
            return self.reference, self.info
        if run.name not in self._own:
            info = {k: v for k, v in self.info.items() if not k.startswith("reference")}
            if run.reference is None:
                self._own[run.name] = (None, {**info, "reference": "the run's own test split"})
            else:
                path, facts = self._reference(run.reference)
                self._own[run.name] = (path, {**info, **facts})
        return self._own[run.name]

    # ------------------------------------------------------------------------- training
    def _train_preset(self, job: Job, folder: Path) -> tuple[dict[str, Any], dict, bool]:
        budget = {} if job.budget == {"epochs": "preset"} else {  # the preset's own budget
            "minutes": "none", "steps": "none", "epochs": "none",
            **{k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in job.budget.items()}}
        timed = "[" + ",".join(f"{m:g}" for m in job.timed) + "]"
        # The protocol scores the checkpoints itself: no in-loop or final scoring spends the
        # budget's clock or needs the run's own evaluator.
        overrides = [*self.spec.overrides, *(f"train.{k}={v}" for k, v in budget.items()),
                     f"train.seed={job.seed}", f"train.threads={self.spec.threads}",
                     f"train.device={self.spec.device}", "log.progress=false",
                     "log.trackers=[]", "log.report_every_s=none", "eval.every=0",
                     "eval.best=none", "eval.final=[]", f"log.checkpoint_minutes={timed}",
                     *job.run.set]
        run = api.train(job.run.preset, overrides=overrides, out=str(folder), log=lambda _: None)
        cfg = run.config  # what the run trained with (its checkpoint's config)
        summary = json.loads((folder / "summary.json").read_text())
        facts = {"steps": summary["steps"], "train_s": summary["elapsed_s"],
                 "images_per_s_last_window": summary["images_per_s"],
                 "dataset": cfg["data"]["name"]}
        facts["images_per_s"] = round(summary["steps"] * summary["images_per_step"]
                                      / max(summary["elapsed_s"], 1e-9), 2)
        return facts, cfg, run.n_classes > 0

    def _train_typical(self, job: Job, folder: Path) -> tuple[dict[str, Any], None, bool]:
        from ganforge.bench.typical import TYPICAL, build_typical

        torch.set_num_threads(self.spec.threads)
        # Only the data settings reach a typical loop: its nets, batch and optimiser are fixed.
        cfg = TYPICAL[job.run.typical].config(tuple(
            o for o in self.spec.overrides + job.run.set if o.startswith("data.")))
        data = api.load_dataset(**dataclasses.asdict(cfg.data))
        loop = build_typical(job.run.typical, job.seed, data, cfg)
        minutes, steps = job.budget.get("minutes"), job.budget.get("steps")
        facts = loop.train_for(folder, minutes, steps, tuple(job.timed))
        facts["dataset"] = data.name
        return facts, None, loop.conditional

    # ------------------------------------------------------------------------- one job
    def run_job(self, job: Job) -> Record:
        """Train ``job``, score its points, and return its record (not yet stored)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        budget = "-".join(f"{v:g}{k[:3]}" if isinstance(v, float) else f"{v}-{k}"
                          for k, v in job.budget.items())
        folder = self.runs / f"{job.run.name}-s{job.seed}-{budget}-{stamp}"
        load_before, t0 = list(os.getloadavg()), time.perf_counter()
        if job.run.kind == "typical":
            facts, cfg, conditional = self._train_typical(job, folder)
        else:
            facts, cfg, conditional = self._train_preset(job, folder)
        wall = round(time.perf_counter() - t0, 1)
        where = machine(self.spec.threads, load_before)
        t1 = time.perf_counter()
        values = {k: v for k, v in facts.items() if k != "dataset"}
        protocol: dict[str, Any] = {
            "name": self.spec.protocol, "spec": self.spec.path.name, "kind": job.run.kind,
            "seed": job.seed, **{f"budget_{k}": v for k, v in job.budget.items()},
            "threads": self.spec.threads, "conditional": conditional,
            "compare_with": job.run.compare_with, "dataset": facts["dataset"],
            "run_dir": folder.name}
        if self.spec.score is not None:
            points = self.score_points(folder, job, conditional)
            protocol.update(self.scoring(job.run)[1], points=[{"minutes": p.pop("minutes"),
                                                "checkpoint": p.pop("checkpoint")}
                                               for p in points])
            for meta, p in zip(protocol["points"], points):
                values.update({point_prefix(meta["minutes"]) + k: v for k, v in p.items()})
        values.update(wall_s=wall, score_s=round(time.perf_counter() - t1, 1))
        preset = job.run.preset
        return Record.now(self.spec.bench, job.run.name, values, protocol, self.command, where,
                          preset=preset, overrides=self.spec.overrides + job.run.set,
                          trained=cfg)

    def score_points(self, folder: Path, job: Job, conditional: bool) -> list[dict[str, Any]]:
        """Each named checkpoint below the budget, then the final one, scored alike."""
        score = self.spec.score
        metrics = job.run.metrics or score.metrics_for(conditional)
        reference = self.scoring(job.run)[0]
        final = job.budget.get("minutes")
        named = [(m, f"min_{m:g}") for m in job.timed] + [(final, None)]
        points = []
        for minutes, checkpoint in named:
            results = api.evaluate(folder, metrics, self.evaluator,
                                   None if reference is None else str(reference), score.samples,
                                   score.reference_n, seed=score.sample_seed,
                                   checkpoint=checkpoint, settings=score.settings,
                                   device=self.spec.device)
            model = next(iter(results.values())).model or {}
            points.append({"minutes": minutes, "checkpoint": model.get("checkpoint", checkpoint),
                           "step": model.get("step"), **flatten(results)})
        return points

    def floor(self) -> Optional[Record]:
        """The real-data row: the spec's floor images scored exactly as samples are; None
        without a floor."""
        score = self.spec.score
        if score is None or score.floor is None:
            return None
        x, y, about = load_source(score.floor)
        x, y = x[:score.samples], None if y is None else y[:score.samples]
        path = write_npz(self.runs / f"floor-{pixels_sha256(x)[:12]}.npz", x, y)
        metrics = list(dict.fromkeys(score.metrics + score.conditional + score.unconditional))
        load_before = list(os.getloadavg())
        results = api.evaluate(path, metrics, self.evaluator, str(self.reference), score.samples,
                               score.reference_n, seed=score.sample_seed,
                               settings=score.settings, device=self.spec.device)
        values = {**flatten(results), "n": len(x)}
        protocol = {"name": self.spec.protocol, "spec": self.spec.path.name, "kind": "floor",
                    **self.info, "floor": about, "pixels_sha256": pixels_sha256(x)}
        return Record.now(self.spec.bench, "floor", values, protocol, self.command,
                          machine(self.spec.threads, load_before))
