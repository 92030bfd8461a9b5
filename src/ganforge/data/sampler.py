"""Reproducible, resumable, DDP-aware batches sliced from an in-memory :class:`TensorData`.

The whole uint8 dataset is moved to the training device once; a batch is then a single
``index_select`` on that tensor followed by the uint8 -> [-1, 1] float conversion, done on the
device. There is no DataLoader, no worker process and no per-sample Python code.

Each epoch's order is a permutation drawn from a generator seeded by ``(seed, epoch)``, so the
sampler's whole state is two integers (epoch, position) and a resumed run sees exactly the
batches an uninterrupted run would have seen. Its batch size, rank and world size are one
:class:`~ganforge.data.batch_plan.BatchPlan`, which also owns their checks.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import torch

from ganforge.data.base import TensorData
from ganforge.data.batch_plan import BatchPlan
from ganforge.errors import CheckpointError

# Datasets up to this size live on the training device; bigger ones stay in host memory and
# each batch is copied over (CelebA at 128 px is ~10 GB and would crowd out the models).
DEVICE_BYTES_LIMIT = 2 * 1024**3


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit generator seed for ``(seed, epoch)``.

    Hashing (rather than ``seed + epoch``) keeps runs with neighbouring seeds from sharing
    shifted copies of the same permutations.
    """
    digest = hashlib.blake2b(f"ganforge-sampler:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class BatchSampler:
    """Endless mini-batches of a dataset, reshuffled every epoch.

    Args:
        data: the dataset; ``data.x`` is (N, C, H, W) uint8 or (N, D) float vectors.
        batch_size: samples per batch on this rank.
        device: where the batches (and, when small enough, the whole dataset) live.
        seed: run seed; all ranks must pass the same seed so they draw the same permutation.
        rank: this process's index in data-parallel training.
        world_size: number of data-parallel processes; rank r takes ``perm[r::world_size]``.

    Each rank sees ``N // world_size`` samples per epoch (equal across ranks, so all ranks
    run the same number of steps) and drops the last partial batch. A training run builds it
    from its :class:`~ganforge.data.batch_plan.BatchPlan` (:meth:`from_plan`).

    Raises:
        ConfigError: an invalid batch, rank or world size, or too few samples for one batch
            per rank (:class:`~ganforge.data.batch_plan.BatchPlan` says which).
    """

    def __init__(
        self,
        data: TensorData,
        batch_size: int,
        device: torch.device | str,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.plan = BatchPlan(batch_size, world_size, rank)
        self.num_samples = len(data)
        self.plan.check_data(self.num_samples, data.name)
        self.samples_per_rank = self.plan.shard_size(self.num_samples)
        if data.is_image and data.x.dtype != torch.uint8:
            raise TypeError(f"image data must be uint8 (N, C, H, W), got {data.x.dtype}")

        self.device = torch.device(device)
        self.seed = seed
        self.is_image = data.is_image

        nbytes = data.x.numel() * data.x.element_size()
        store = self.device if nbytes <= DEVICE_BYTES_LIMIT else torch.device("cpu")
        # Vectors are converted once here; images stay uint8 (4x smaller) until batched.
        x = data.x if data.is_image else data.x.to(torch.float32)
        self._x = x.contiguous().to(store)
        self._on_device = store == self.device
        self._y: Optional[torch.Tensor] = None if data.y is None else data.y.contiguous().to(store)

        self._epoch = 0
        self._position = 0
        self._perm: Optional[torch.Tensor] = None
        self._perm_epoch = -1

    @classmethod
    def from_plan(cls, data: TensorData, plan: BatchPlan, device: torch.device | str,
                  seed: int) -> BatchSampler:
        """The sampler of one rank of a run: batches of ``plan.per_rank`` from its shard."""
        return cls(data, plan.per_rank, device, seed, plan.rank, plan.world_size)

    # ------------------------------------------------------------------ properties

    @property
    def batch_size(self) -> int:
        """Samples per batch on this rank (the plan's ``per_rank``)."""
        return self.plan.per_rank

    @property
    def rank(self) -> int:
        return self.plan.rank

    @property
    def world_size(self) -> int:
        return self.plan.world_size

    @property
    def epoch(self) -> int:
        """Completed passes over the data (the epoch the next batch comes from)."""
        return self._epoch

    @property
    def position(self) -> int:
        """Batches already taken from the current epoch, in ``[0, steps_per_epoch)``."""
        return self._position

    @property
    def steps_per_epoch(self) -> int:
        """Full batches per epoch on this rank."""
        return self.samples_per_rank // self.batch_size

    @property
    def on_device(self) -> bool:
        """Whether the dataset itself lives on the training device (else batches are copied)."""
        return self._on_device

    # ------------------------------------------------------------------ batches

    def permutation(self, epoch: int) -> torch.Tensor:
        """(N // world_size,) int64 sample indices this rank visits in ``epoch``, in order."""
        gen = torch.Generator()
        gen.manual_seed(epoch_seed(self.seed, epoch))
        perm = torch.randperm(self.num_samples, generator=gen)
        return perm[self.rank :: self.world_size][: self.samples_per_rank]

    def next(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The next batch.

        Returns:
            x: (B, C, H, W) float32 in [-1, 1] (``uint8 / 127.5 - 1``) or (B, D) float32 vectors,
                on ``device``.
            y: (B,) int64 labels, (B, A) float32 attributes, or None; on ``device``.
        """
        if self._perm_epoch != self._epoch:
            self._perm = self.permutation(self._epoch).to(self._x.device)
            self._perm_epoch = self._epoch
        assert self._perm is not None
        start = self._position * self.batch_size
        idx = self._perm[start : start + self.batch_size]

        x = self._x.index_select(0, idx).to(self.device, non_blocking=True)
        if self.is_image:
            x = x.to(torch.float32).div_(127.5).sub_(1.0)
        y = None
        if self._y is not None:
            y = self._y.index_select(0, idx).to(self.device, non_blocking=True)

        # Roll over eagerly so `epoch`/`position` always describe the *next* batch.
        self._position += 1
        if self._position == self.steps_per_epoch:
            self._position = 0
            self._epoch += 1
        return x, y

    def __iter__(self) -> BatchSampler:
        return self

    def __next__(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.next()

    # ------------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state; with the same data and arguments it restores the batch stream."""
        return {
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the sampler that wrote ``state`` stopped.

        The rank is not part of the state: every rank loads the same dict (saved by rank 0).
        """
        if not isinstance(state, dict) or not {"epoch", "position"} <= state.keys():
            raise CheckpointError("sampler state lacks 'epoch'/'position'; the checkpoint is "
                                  "corrupt or from another program")
        for key in ("seed", "batch_size", "world_size", "num_samples"):
            if key in state and state[key] != getattr(self, key):
                raise CheckpointError(
                    f"sampler state has {key}={state[key]} but this run has {key}="
                    f"{getattr(self, key)}; resume with the same data and train settings"
                )
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < self.steps_per_epoch:
            raise CheckpointError(
                f"sampler state epoch={epoch}, position={position} is out of range "
                f"(steps_per_epoch={self.steps_per_epoch}); the checkpoint is corrupt"
            )
        self._epoch, self._position = epoch, position
