"""Experiment trackers: where a run's scalars, fixed-noise grids and config go besides its folder.

``log.trackers`` names them (default ``["tensorboard"]``; ``[]`` for none). Each is registered
in :data:`TRACKERS` and is a stats writer: the watchers attach it to the run's collector, so it
receives the same means as ``stats.jsonl`` at every flush, plus the fixed-noise grids
(``write_image``, from ``progress.py``) and the resolved config when it starts.

============  ==============================  ==========================================
name          needs                           where the run goes
============  ==============================  ==========================================
tensorboard   (installed with ganforge)       ``RUN/tb/``
mlflow        ``pip install ganforge[mlflow]``  ``MLFLOW_TRACKING_URI``; unset, a local store
                                              ``mlruns/`` beside the run folder (``mlflow.db``
                                              + ``artifacts/``), shared by the runs there
wandb         ``pip install ganforge[wandb]``   W&B, as ``WANDB_MODE`` says; offline runs are
                                              kept in ``RUN/wandb/`` (or ``WANDB_DIR``)
============  ==============================  ==========================================

Only the process that writes the run folder (rank 0 under ``torchrun``) opens trackers. A
resumed run continues its tracker runs: their ids travel in the checkpoint (the watchers'
state). A tracker that fails while training (a tracking server gone, a full disk) says so once
and stops; the run folder still holds every number.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ganforge.errors import ConfigError, GanforgeError
from ganforge.registry import Registry
from ganforge.reporting.writers import TensorBoardWriter
from ganforge.run.folder import flatten
from ganforge.run.layout import TENSORBOARD_DIR

MLFLOW_STORE_DIR = "mlruns"    # the local MLflow store, beside the run folder
MLFLOW_BATCH = 100             # params per log_batch call (MLflow's limit)
MLFLOW_PARAM_CHARS = 6000      # longest param value MLflow stores
WANDB_PROJECT = "ganforge"     # W&B project unless WANDB_PROJECT says otherwise


@dataclass
class TrackerContext:
    """What a tracker starts from.

    Attributes:
        run_dir: the run folder (it exists when trackers open).
        name: the config's name (preset), used as MLflow experiment and W&B group.
        config: the resolved config as a nested dict.
        step: the step training starts (or resumes) at.
        resumed: the run continues from a checkpoint.
        previous: this tracker's run id saved in that checkpoint, or None.
        log: one-line console messages.
    """

    run_dir: Path
    name: str
    config: dict[str, Any]
    step: int = 0
    resumed: bool = False
    previous: Optional[str] = None
    log: Callable[[str], None] = print


class Tracker:
    """One experiment tracker of a run: scalars, images, the config, an id to resume with.

    Subclasses implement ``_scalars``, ``_image`` and ``_close``; the public methods guard
    them, so a tracker that fails mid-run logs once and goes quiet instead of ending training.

    Attributes:
        package: the module it needs (None: always there); ``extra``: the pip extra that
            installs it.
    """

    name = "tracker"
    package: Optional[str] = None
    extra: Optional[str] = None

    def __init__(self, ctx: TrackerContext) -> None:
        self.log = ctx.log
        self.failed = False
        self.closed = False

    @property
    def run_id(self) -> Optional[str]:
        """What a resumed run passes back as ``TrackerContext.previous``."""
        return None

    def write_scalars(self, step: int, record: Mapping[str, Any]) -> None:
        """Log one flushed stats record (``name -> mean``) at ``step``."""
        if not self.closed:
            self._guarded(self._scalars, int(step), record)

    def write_image(self, tag: str, step: int, image: np.ndarray) -> None:
        """Log an (H, W, 3) uint8 image (a fixed-noise grid) under ``tag`` at ``step``."""
        if not self.closed:
            self._guarded(self._image, tag, int(step), np.asarray(image))

    def close(self) -> None:
        """Finish the tracker's run (once; later calls do nothing)."""
        if not self.closed:
            self.closed = True
            self._guarded(self._close)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        if self.failed:
            return
        try:
            fn(*args)
        except Exception as err:  # noqa: BLE001 - a third-party client must not end training
            self.failed = True
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            self.log(f"note: tracker {self.name} stopped logging ({first}); the run folder "
                     "keeps every value")

    def _scalars(self, step: int, record: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _image(self, tag: str, step: int, image: np.ndarray) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


TRACKERS: Registry[type[Tracker]] = Registry("tracker")


def numeric(record: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a stats record, without its ``step``."""
    return {str(k): float(v) for k, v in record.items()
            if k != "step" and v is not None and not isinstance(v, (str, bool))}


# ---------------------------------------------------------------------------------------------
# The trackers
# ---------------------------------------------------------------------------------------------

@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    """TensorBoard event files in RUN/tb (scalars and grids; `tensorboard --logdir runs`)."""

    name = "tensorboard"

    def __init__(self, ctx: TrackerContext) -> None:
        super().__init__(ctx)
        # On resume, TensorBoard drops the events past the checkpoint (redone from here).
        self.writer = TensorBoardWriter(ctx.run_dir / TENSORBOARD_DIR,
                                        purge_step=ctx.step + 1 if ctx.resumed else None)

    def _scalars(self, step: int, record: Mapping[str, Any]) -> None:
        self.writer.write_scalars(step, record)

    def _image(self, tag: str, step: int, image: np.ndarray) -> None:
        self.writer.write_image(tag, step, image)

    def _close(self) -> None:
        self.writer.close()


def mlflow_key(name: str) -> str:
    """A statistic's name as MLflow accepts it: ``Prob/D(G(z))`` -> ``Prob/D_G_z`` (MLflow
    allows letters, digits and ``_ - . : /`` and spaces)."""
    return re.sub(r"[^\w\-.:/ ]", "_", name.replace("(", "_").replace(")", ""))


def mlflow_local_uri(run_dir: Path) -> tuple[str, str]:
    """(tracking URI, artifact URI) of the local store beside the run folder.

    A SQLite database: MLflow 3 refuses its old file store unless told otherwise.
    """
    store = run_dir.resolve().parent / MLFLOW_STORE_DIR
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(store / 'mlflow.db').as_posix()}", (store / "artifacts").as_uri()


@TRACKERS.register("mlflow")
class MLflowTracker(Tracker):
    """MLflow: MLFLOW_TRACKING_URI, else a local store mlruns/ beside the run folder."""

    name, package, extra = "mlflow", "mlflow", "mlflow"

    def __init__(self, ctx: TrackerContext) -> None:
        super().__init__(ctx)
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri, artifacts = os.environ.get("MLFLOW_TRACKING_URI"), None
        if not uri:
            uri, artifacts = mlflow_local_uri(ctx.run_dir)
        try:
            self.client = MlflowClient(tracking_uri=uri)
            self._id = self._continue(ctx.previous) if ctx.previous else None
            if self._id is None:
                self._id = self._start(ctx, artifacts)
                params = [Param(k, json.dumps(v)[:MLFLOW_PARAM_CHARS])
                          for k, v in flatten(ctx.config).items()]
                for i in range(0, len(params), MLFLOW_BATCH):
                    self.client.log_batch(self._id, params=params[i:i + MLFLOW_BATCH])
            # The config as a file too (params cannot change; a resumed run may override).
            self.client.log_dict(self._id, ctx.config, "config.json")
        except MlflowException as err:
            raise GanforgeError(f"mlflow could not start a run at '{uri}' "
                                f"({str(err).splitlines()[0]}); check MLFLOW_TRACKING_URI or "
                                "remove mlflow from log.trackers") from None

    def _start(self, ctx: TrackerContext, artifacts: Optional[str]) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or ctx.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            from mlflow.exceptions import MlflowException

            try:
                experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
            except MlflowException:  # another run created it since we looked
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        run = self.client.create_run(experiment_id, run_name=ctx.run_dir.name,
                                     tags={"ganforge.run_dir": str(ctx.run_dir.resolve())})
        return run.info.run_id

    def _continue(self, run_id: str) -> Optional[str]:
        """The checkpoint's run, running again; None when this store does not hold it."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.update_run(run_id, status="RUNNING")
        except MlflowException:
            return None
        return run_id

    @property
    def run_id(self) -> Optional[str]:
        return self._id

    def _scalars(self, step: int, record: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(mlflow_key(k), v, now, step) for k, v in numeric(record).items()]
        if metrics:
            self.client.log_batch(self._id, metrics=metrics)

    def _image(self, tag: str, step: int, image: np.ndarray) -> None:
        self.client.log_image(self._id, image, key=mlflow_key(tag), step=step)

    def _close(self) -> None:
        self.client.set_terminated(self._id, status="FINISHED")


@TRACKERS.register("wandb")
class WandbTracker(Tracker):
    """Weights & Biases, as WANDB_MODE says (offline runs stay in RUN/wandb or WANDB_DIR)."""

    name, package, extra = "wandb", "wandb", "wandb"

    def __init__(self, ctx: TrackerContext) -> None:
        super().__init__(ctx)
        import wandb

        self.wandb = wandb
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or WANDB_PROJECT,
                name=ctx.run_dir.name, group=ctx.name, job_type="train",
                id=ctx.previous or uuid.uuid4().hex[:12], resume="allow",
                # Read here, not once per process as wandb's own session does, so each run
                # follows the environment it starts in.
                dir=os.environ.get("WANDB_DIR") or str(ctx.run_dir),
                mode=os.environ.get("WANDB_MODE") or None,
                settings=wandb.Settings(console="off", quiet=True))
        except Exception as err:  # noqa: BLE001 - wandb raises many types (login, network)
            raise GanforgeError(f"wandb could not start ({str(err).splitlines()[0]}); run "
                                "`wandb login`, or set WANDB_MODE=offline to keep the run "
                                "local") from None
        self.run.config.update(ctx.config, allow_val_change=True)
        # A custom step axis: a resumed run logs its redone steps again instead of W&B
        # dropping every step below the highest one it has seen.
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    @property
    def run_id(self) -> Optional[str]:
        return self.run.id

    def _scalars(self, step: int, record: Mapping[str, Any]) -> None:
        self.run.log({**numeric(record), "step": step})

    def _image(self, tag: str, step: int, image: np.ndarray) -> None:
        self.run.log({tag: self.wandb.Image(image), "step": step})

    def _close(self) -> None:
        self.run.finish()


# ---------------------------------------------------------------------------------------------
# Checking and opening
# ---------------------------------------------------------------------------------------------

def check_trackers(names: Sequence[str]) -> None:
    """Refuse unknown trackers and trackers whose package is missing (one line naming the
    extra), before anything of the run is written.

    Raises:
        ConfigError: an unknown name (the valid ones are listed) or a missing package.
    """
    for name in names:
        cls = TRACKERS.get(name)
        if cls.package and importlib.util.find_spec(cls.package) is None:
            raise ConfigError(f"log.trackers names '{name}' but the {cls.package} package is "
                              f"not installed; pip install 'ganforge[{cls.extra}]' or remove "
                              f"{name} from log.trackers")


def open_trackers(names: Sequence[str], ctx: TrackerContext,
                  previous: Optional[Mapping[str, Optional[str]]] = None) -> list[Tracker]:
    """Start every tracker of ``names`` (each continues its run id in ``previous``)."""
    check_trackers(names)
    opened: list[Tracker] = []
    try:
        for name in names:
            own = TrackerContext(**{**vars(ctx), "previous": (previous or {}).get(name)})
            opened.append(TRACKERS.get(name)(own))
    except BaseException:
        for tracker in opened:  # the ones already started do not stay open
            tracker.close()
        raise
    return opened
