"""How many samples a training step draws, on each rank and over all of them: the one owner.

A run has one batch size, ``train.batch_size``, and it is *per rank*: under ``torchrun`` each of
the N processes draws its own batch of that size, so one step sees N times as many samples. A
:class:`BatchPlan` is built once from the config and the world (``training/step/setup.py``)
and everything that counts samples reads it: the sampler (real batches), the fakes (latents
drawn per rank), the EMA's images per step, the images/s statistic, and resuming a checkpoint
written by another number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganforge.errors import ConfigError


@dataclass(frozen=True)
class BatchPlan:
    """This rank's batch and the global batch of a data-parallel step.

    Attributes:
        per_rank: samples per batch on each rank (``train.batch_size``).
        world_size: data-parallel processes (1 without torchrun).
        rank: this process's index in ``[0, world_size)``.

    Raises:
        ConfigError: a non-positive batch, or a rank outside the world.
    """

    per_rank: int
    world_size: int = 1
    rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(f"sampler rank={self.rank}, world_size={self.world_size} is "
                              "invalid; need 0 <= rank < world_size")
        if self.per_rank < 1:
            raise ConfigError(f"train.batch_size={self.per_rank} must be positive, e.g. 64")

    @property
    def global_batch(self) -> int:
        """Samples one batch draws over all ranks: ``per_rank × world_size``."""
        return self.per_rank * self.world_size

    def shard_size(self, num_samples: int) -> int:
        """Samples each rank visits per epoch: an equal share, so all ranks run the same
        number of steps (the remainder is left out)."""
        return num_samples // self.world_size

    def check_data(self, num_samples: int, name: str) -> None:
        """Refuse a dataset too small for one batch on every rank.

        Args:
            num_samples: samples in the dataset.
            name: the dataset's name, for the message.

        Raises:
            ConfigError: fewer samples per rank than ``per_rank``, with the largest batch
                that fits.
        """
        shard = self.shard_size(num_samples)
        if shard >= self.per_rank:
            return
        split = f" ({shard} per rank over {self.world_size} ranks)" if self.world_size > 1 else ""
        raise ConfigError(
            f"dataset '{name}' has {num_samples} samples{split}, fewer than "
            f"train.batch_size={self.per_rank}; lower train.batch_size to at most "
            f"{max(shard, 1)} or use more data")
