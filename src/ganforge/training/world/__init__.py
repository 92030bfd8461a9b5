"""The distributed world of a training run: ranks, collectives, and statistics over the ranks.

* :mod:`.ranks`: :class:`~.ranks.World` (this process's rank and the collectives the loop
  needs), joining a ``torchrun`` launch (:func:`~.ranks.session`), each rank's device and
  random stream, rank 0's lock on the run folder;
* :mod:`.stats`: :class:`~.stats.DistributedStats`, means over every rank's values.

One process is rank 0 of a world of 1, so the loop never asks whether it is distributed.
What it may import: the run layer (the lock), ``reporting.stats`` (the collector it extends),
``runtime`` and the foundation. Never the step or the watch rooms above it.
"""
