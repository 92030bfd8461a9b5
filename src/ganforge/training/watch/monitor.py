"""Metrics during training, and the best checkpoint they pick.

GANs often peak and then degrade or collapse, so the last checkpoint is not always the one to
keep. Every ``eval.every`` steps (and when the training clock passes each of ``eval.minutes``)
the monitor draws ``eval.samples`` samples from fixed latents
and labels (the same every time, so changes come from G and not from sampling noise), runs the
configured metrics with the run's domain evaluator, reports them as ``Metrics/<name>`` and, when
``eval.best`` improves, saves ``checkpoints/best.{safetensors,json}``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from ganforge.errors import GanforgeError
from ganforge.imaging import to_uint8
from ganforge.metrics import METRICS
from ganforge.metrics.base import HIGHER_IS_BETTER, WITHOUT_FEATURES, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.extractors import load_extractor
from ganforge.metrics.evaluate import evaluate, format_table, run_reference, save_results
from ganforge.run.layout import METRICS_FILE
from ganforge.run.sampling import render_samples

if TYPE_CHECKING:
    from ganforge.training.step.setup import Setup


# Details of a result that get a curve of their own, as Metrics/<metric>/<detail>.
DETAIL_CURVES = ("recall", "coverage", "worst_class_acc", "disagreement")


class MetricMonitor:
    """In-loop evaluation for one run.

    Args:
        setup: the run's components (G, noise sampler, data config).
        log: one-line console messages.
        state: ``state_dict()`` of a previous monitor (resumed runs keep their best value).
    """

    def __init__(self, setup: "Setup", log: Callable[[str], None] = print,
                 state: Optional[dict[str, Any]] = None) -> None:
        cfg = setup.cfg.eval
        self.s, self.cfg, self.log = setup, cfg, log
        self.fns = [(name, METRICS.get(name)) for name in cfg.metrics]
        self.settings = cfg.settings  # each metric's own settings (eval.settings.<name>)
        # The reference is the training data itself, without a subset limit.
        self.reference = copy.deepcopy(setup.cfg.data)
        self.reference.limit = None
        gen = torch.Generator().manual_seed(setup.cfg.train.seed + 7919)
        self.z = setup.noise.z(cfg.samples, gen, device="cpu").to(setup.device)
        y = setup.noise.labels(cfg.samples, gen, device="cpu")
        self.y = None if y is None else y.to(setup.device)
        self.extractor = None
        if setup.data.is_image and set(cfg.metrics) - WITHOUT_FEATURES:
            # Loaded now, before the run folder is written: a missing evaluator stops the run.
            self.extractor = load_extractor(cfg.extractor or f"{setup.cfg.data.name}-lenet")
        state = state or {}
        self.best_value: Optional[float] = state.get("best_value")
        self.best_step: Optional[int] = state.get("best_step")
        self.history: list[dict[str, Any]] = list(state.get("history", []))
        self._last: Optional[tuple[int, dict[str, float]]] = None  # (step, values)

    def due(self, step: int) -> bool:
        return self.cfg.every > 0 and step % self.cfg.every == 0

    def evaluate(self, step: int) -> dict[str, float]:
        """Run every metric on the current G; returns ``{"Metrics/<name>": value}``.

        A step already scored (``eval.every`` and ``eval.minutes`` both due) is not scored
        again: G has not changed.
        """
        if self._last is not None and self._last[0] == step:
            return dict(self._last[1])
        x = render_samples(self.s.sampling_generator, self.z, self.y)
        samples = to_uint8(x) if x.dim() == 4 else x
        labels = None if self.y is None else self.y.cpu()
        ctx = EvalContext(samples, labels, self.reference, self.extractor,
                          seed=self.s.cfg.train.seed, log=self.log)
        values: dict[str, float] = {}
        record: dict[str, Any] = {"step": step}
        for name, fn in self.fns:
            result = fn(ctx, **self.settings.get(name, {}))
            values[f"Metrics/{name}"] = float(result.value)
            record[name] = {"name": result.name, "value": float(result.value)}
            for key in DETAIL_CURVES:  # e.g. recall beside precision, the evaluators' disagreement
                detail = result.details.get(key)
                if isinstance(detail, (int, float)) and not isinstance(detail, bool):
                    values[f"Metrics/{name}/{key}"] = float(detail)
        self.history.append(record)
        self._last = (step, dict(values))
        return values

    def improved(self, values: dict[str, float], step: int) -> bool:
        """Whether ``eval.best`` improved (and remember it)."""
        if self.cfg.best is None:
            return False
        value = values[f"Metrics/{self.cfg.best}"]
        better = (self.best_value is None or
                  (value > self.best_value if self.cfg.best in HIGHER_IS_BETTER
                   else value < self.best_value))
        if better:
            self.best_value, self.best_step = value, step
        return better

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_step": self.best_step,
                "best_metric": self.cfg.best, "history": self.history}


class FinalScore:
    """``eval.final``: the final G scored exactly as ``ganforge evaluate RUN`` scores it (the run's
    newest checkpoint, ``eval.final_samples`` samples, the run's own test split as the real set),
    merged into ``RUN/metrics.json`` and printed, so a run ends with its numbers.

    Built before the run folder is written: unknown metrics or a missing evaluator stop the run
    before it starts, not after it trained.

    Args:
        setup: the run's components (config, device).
        log: one-line console messages.
    """

    def __init__(self, setup: "Setup", log: Callable[[str], None] = print) -> None:
        cfg = setup.cfg
        self.names, self.log = list(cfg.eval.final), log
        self.samples, self.seed = cfg.eval.final_samples, cfg.train.seed
        self.settings = cfg.eval.settings  # each metric's own settings
        self.device = str(setup.device)
        for name in self.names:
            METRICS.get(name)
        self.extractor = None
        if setup.data.is_image and set(self.names) - WITHOUT_FEATURES:
            spec = cfg.eval.extractor or f"{cfg.data.name}-lenet"
            try:
                self.extractor = load_extractor(spec)
            except GanforgeError as err:
                # A preset that scores itself (cgan-digits) pointed at other data: say both fixes.
                raise type(err)(f"eval.final={self.names} needs the evaluator '{spec}': {err}; "
                                "or train without the final scoring: --set eval.final=[]") from err

    def score(self, run_dir: Path) -> list[MetricResult]:
        """Score the newest checkpoint of ``run_dir``; write and print the results."""
        results = evaluate(run_dir, self.names, self.extractor, run_reference(run_dir),
                           self.samples, seed=self.seed, device=self.device, log=self.log,
                           settings=self.settings)
        save_results(run_dir / METRICS_FILE, run_dir, results)
        for line in format_table(results).splitlines():
            self.log(line)
        return results
