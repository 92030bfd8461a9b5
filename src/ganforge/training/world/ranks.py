"""Data-parallel training over several processes, launched by ``torchrun``.

``torchrun --nproc_per_node N -m ganforge train ...`` starts N copies of the same command with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Each copy
joins one process group (:func:`session`: NCCL on CUDA, gloo on the CPU, ``train.dist_backend``
to override) and:

- trains on its shard of the data (``BatchSampler(rank, world_size)``: rank r takes every
  N-th sample of the epoch's permutation), with ``train.batch_size`` samples *per rank*: the
  run's :class:`~ganforge.data.batch_plan.BatchPlan`, whose global batch is N times that;
- builds G and D from the same seed (identical weights; DDP broadcasts them anyway), then draws
  its own latents, dropout masks and penalty points: before every step the torch RNG is seeded
  from ``(train.seed, rank, step)`` (:func:`step_seed`), so the ranks' streams differ and a
  resumed run continues them exactly without storing one RNG state per rank;
- averages gradients through DDP (``training/step/runner.py`` says how G and D are wrapped) and
  its statistics through :class:`~ganforge.training.world.stats.DistributedStats` before they
  are logged;
- leaves the run folder to rank 0: only rank 0 takes the lock and writes config, stats, grids,
  reports, checkpoints and the summary (the launcher gives the other ranks watch hooks that
  write nothing). In-loop metrics are computed by rank 0 from its G — weights that DDP
  keeps identical everywhere, buffers that DDP broadcasts from rank 0 — while the others wait
  for the values (:meth:`World.from_main`), so they equal a single process's metrics on the
  same weights;
- resumes from the same checkpoint as every other rank; the data order continues exactly with
  the same number of processes and at the same point of the epoch with another
  (:meth:`World.sampler_state`), since checkpoints hold the plain, unwrapped modules.

A failing rank must not leave the others waiting forever: collectives time out after
``train.dist_timeout_s`` (gloo also fails at once when a peer's connection closes), and the
error becomes one line naming the rank. The process group is destroyed when the run ends,
however it ends.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

from ganforge.data.batch_plan import BatchPlan
from ganforge.data.sampler import BatchSampler
from ganforge.errors import ConfigError, GanforgeError
from ganforge.run.lock import RunLock
from ganforge.runtime import pick_device

T = TypeVar("T")
ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


def _quiet(_message: str) -> None:
    """The console of ranks other than 0: their messages would repeat rank 0's."""


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run (one process: rank 0 of 1).

    Attributes:
        rank: global rank, 0..world_size-1; rank 0 writes the run folder.
        local_rank: rank on this node; picks the GPU (``cuda:LOCAL_RANK``).
        world_size: number of processes over all nodes.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def log(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` on rank 0, silence elsewhere."""
        return log if self.is_main else _quiet

    # ------------------------------------------------------------------ collectives
    def from_main(self, fn: Callable[[], T], share: bool = True) -> Optional[T]:
        """Run ``fn`` on rank 0 only; every rank gets its result (or ``None`` with
        ``share=False``: then only whether it succeeded travels) — or its error.

        The other ranks wait in the broadcast (within ``train.dist_timeout_s``).

        Raises:
            GanforgeError: on the other ranks when ``fn`` raised on rank 0 (rank 0 re-raises
                the original exception).
        """
        if not self.distributed:
            return fn()
        box: list[Any] = [None]
        result: Optional[T] = None
        error: Optional[BaseException] = None
        if self.is_main:
            try:
                result = fn()
                box[0] = ("ok", result if share else None)
            except Exception as err:  # every rank must leave the broadcast, then rank 0 raises
                error = err
                box[0] = ("error", " ".join(str(err).splitlines()) or type(err).__name__)
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        kind, value = box[0]
        if kind == "error":
            raise GanforgeError(f"rank {self.rank}: rank 0 failed: {value}")
        return result if self.is_main else value

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over all ranks (returned on its own device).

        NaN and Inf survive a sum, so a non-finite flag on any rank reaches every rank.
        """
        if not self.distributed:
            return tensor
        work = tensor.detach().to(collective_device(), dtype=torch.float64, copy=True)
        dist.all_reduce(work)
        return work.to(tensor.device)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (e.g. a time budget ran out)."""
        if not self.distributed:
            return flag
        return bool(self.sum(torch.tensor([float(flag)])).item() > 0)

    def agree(self, flags: Sequence[bool]) -> list[bool]:
        """Each of ``flags``, true on every rank when it is true on any rank — one collective
        for all of them (the loop asks this once per step: budget, stop signal, checkpoint)."""
        if not self.distributed:
            return [bool(f) for f in flags]
        summed = self.sum(torch.tensor([float(f) for f in flags])).tolist()
        return [value > 0 for value in summed]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    # ------------------------------------------------------------------ the run folder
    @contextlib.contextmanager
    def lock(self, run_dir: Path) -> Iterator[None]:
        """Rank 0 holds the run folder's lock (``ganforge.run.lock``) for the whole run; when it
        cannot, every rank stops with its message."""
        held = self.from_main(lambda: RunLock(run_dir).acquire(), share=False)
        try:
            yield
        finally:
            if held is not None and self.is_main:
                held.release()

    def sampler_state(self, state: Mapping[str, Any], sampler: BatchSampler,
                      log: Callable[[str], None]) -> Mapping[str, Any]:
        """A checkpoint's sampler state, fitted to this run's world size.

        Written by another number of processes, a checkpoint continues at the same point of its
        epoch: ranks take strided slices of one permutation, so after ``position`` batches of
        the writer's global batch the first ``position × global batch`` samples of the epoch
        are used, whatever the split. (A global batch that does not divide that count repeats
        the few samples of a partial batch.) The same world size keeps the exact state.

        Args:
            state: the checkpoint's ``sampler`` entry.
            sampler: this run's sampler (its :class:`~ganforge.data.batch_plan.BatchPlan`).
            log: where to say that the split changed.
        """
        plan, saved = sampler.plan, int(state.get("world_size", 1))
        if saved == plan.world_size:
            return state
        written = BatchPlan(int(state.get("batch_size", plan.per_rank)), saved)
        used = int(state["position"]) * written.global_batch
        epoch, position = int(state["epoch"]), used // plan.global_batch
        if position >= sampler.steps_per_epoch:
            epoch, position = epoch + 1, 0
        log(f"the checkpoint was written by {saved} process(es), this run has "
            f"{plan.world_size}: continuing epoch {epoch} after its first {used} samples")
        return dict(state, epoch=epoch, position=position, world_size=plan.world_size,
                    batch_size=plan.per_rank)


def current() -> World:
    """The world of this process: from the initialised process group, else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    rank, size = dist.get_rank(), dist.get_world_size()
    return World(rank, int(os.environ.get("LOCAL_RANK", rank)), size)


def collective_device() -> torch.device:
    """Where collective tensors live: the GPU for NCCL, the CPU for gloo."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def launch_env() -> Optional[World]:
    """The world a ``torchrun`` launch describes, or None outside one (or with one process).

    Raises:
        ConfigError: torchrun variables that are incomplete or inconsistent.
    """
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, local_rank, size = (int(os.environ.get(k, "0")) for k in ENV_KEYS)
    except ValueError:
        raise ConfigError(f"RANK/LOCAL_RANK/WORLD_SIZE must be integers (got "
                          f"{[os.environ.get(k) for k in ENV_KEYS]}); launch with torchrun"
                          ) from None
    if size <= 1:
        return None
    if not 0 <= rank < size or "RANK" not in os.environ:
        raise ConfigError(f"RANK={os.environ.get('RANK')} with WORLD_SIZE={size} is not a "
                          "valid launch; start the processes with torchrun")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not set for a {size}-process run; launch "
                          "with torchrun (it sets them) or export them")
    return World(rank, local_rank, size)


def pick_backend(backend: str, device: torch.device) -> str:
    """``train.dist_backend``: "auto" → NCCL for CUDA, gloo otherwise."""
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(f"train.dist_backend=nccl needs CUDA but this run trains on "
                          f"{device.type}; use train.dist_backend=gloo or auto")
    return backend


def _is_comm_failure(err: BaseException) -> bool:
    """Errors that mean "a peer is gone or silent" rather than a bug in this process."""
    if isinstance(err, dist.DistError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(s in text for s in (
        "Connection closed by peer", "Connection reset by peer", "Broken pipe", "Timed out",
        "timed out", "NCCL communicator was aborted", "Socket Timeout"))


@contextlib.contextmanager
def session(train_cfg: Any) -> Iterator[World]:
    """Join a torchrun launch's process group for one run (a no-op for a single process).

    A process group that is already initialised (a notebook or test that manages its own) is
    used as it is and left open. Either way the ranks leave together: rank 0 may still be
    writing the run folder when the others finish their last step.

    Args:
        train_cfg: the run's :class:`~ganforge.config.TrainConfig` (device, dist_backend,
            dist_timeout_s).
    """
    owned = not (dist.is_available() and dist.is_initialized())
    env = launch_env() if owned else None
    if owned and env is None:
        yield World()
        return
    if owned:
        assert env is not None
        backend = pick_backend(train_cfg.dist_backend, pick_device(train_cfg.device))
        if backend == "nccl":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend,
                                timeout=datetime.timedelta(seconds=train_cfg.dist_timeout_s))
    world = current()
    try:
        yield world
        world.barrier()
    except Exception as err:
        if _is_comm_failure(err):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise GanforgeError(
                f"rank {world.rank}: lost contact with the other processes ({first[:200]}); "
                "another rank failed (its error is in its output) or was silent longer than "
                f"train.dist_timeout_s={train_cfg.dist_timeout_s:g}") from err
        raise
    finally:
        if owned:
            dist.destroy_process_group()


def rank_device(device: torch.device, world: World) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for multi-process CUDA runs.

    Raises:
        ConfigError: an explicit ``cuda:N`` under torchrun (every rank would share GPU N).
    """
    if not world.distributed or device.type != "cuda":
        return device
    if device.index is not None and device.index != world.local_rank:
        raise ConfigError(f"train.device={device} under torchrun would put every rank on one "
                          "GPU; use train.device=auto or cuda (rank r uses cuda:LOCAL_RANK)")
    if world.local_rank >= torch.cuda.device_count():
        raise ConfigError(f"LOCAL_RANK={world.local_rank} but only {torch.cuda.device_count()} "
                          "GPU(s) are visible; lower --nproc_per_node")
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


def step_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit torch seed for ``(seed, rank, step)``: each rank's random stream."""
    digest = hashlib.blake2b(f"ganforge-rank:{seed}:{rank}:{step}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)
