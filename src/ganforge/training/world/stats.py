"""Statistics averaged over the ranks of a data-parallel run.

Every rank adds its own losses and probabilities to its collector; before a stats line is
written, the ranks' pending sums are added up, so the line holds means over the global batch.
"""

from __future__ import annotations

import zlib
from typing import Any, Mapping, Optional

import torch

from ganforge.reporting.stats import StatsCollector
from ganforge.training.world.ranks import World


class DistributedStats(StatsCollector):
    """A :class:`StatsCollector` whose means are over every rank's values.

    Each flush sums every statistic's pending total and count over the ranks (one all-reduce
    of a float64 vector) before the writers see the record, so ``Loss/D`` is the mean over the
    global batch. Every rank must flush at the same steps with the same statistic names; a
    checksum of the names rides along and a mismatch is an error, not a wrong mean.

    A checkpoint stores the *global* pending sums (:meth:`state_dict` is collective); on
    resume rank 0 takes them back and the other ranks start empty, so the sums add up as in
    an uninterrupted run.
    """

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def _global_state(self) -> dict[str, Any]:
        local = super().state_dict()
        names = list(local["counts"])  # first-seen order; the checksum covers it too
        totals = [local["host_sums"].get(n, 0.0) + local["tensor_sums"].get(n, 0.0)
                  for n in names]
        check = float(zlib.crc32("\n".join(names).encode()))
        packed = torch.tensor(totals + [float(local["counts"][n]) for n in names] + [check],
                              dtype=torch.float64)
        reduced = self.world.sum(packed).tolist()
        if reduced[-1] != check * self.world.world_size:
            raise RuntimeError(f"rank {self.world.rank}: the ranks reported different "
                               f"statistics ({', '.join(names)}); every rank must run the "
                               "same steps")
        k = len(names)
        return {"host_sums": dict(zip(names, reduced[:k])), "tensor_sums": {},
                "counts": {n: int(round(c)) for n, c in zip(names, reduced[k:2 * k])}}

    def flush(self, step: int, extra: Optional[Mapping[str, Any]] = None) -> dict[str, float]:
        super().load_state_dict(self._global_state(), "cpu")
        return super().flush(step, extra)

    def state_dict(self) -> dict[str, Any]:
        return self._global_state()

    def load_state_dict(self, state: Mapping[str, Any], device: str | torch.device) -> None:
        if self.world.is_main:
            super().load_state_dict(state, device)
        else:
            self.reset()


def stats_collector(world: World) -> StatsCollector:
    """The run's collector: plain for one process, rank-averaging under torchrun."""
    return DistributedStats(world) if world.distributed else StatsCollector()
