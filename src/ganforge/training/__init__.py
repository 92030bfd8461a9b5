"""Training: from a resolved config to a trained run folder.

Three rooms and the launcher on top of them, each importing only those below it:

* :mod:`.launch`: one training job (world, lock, watchers, trainer) — what the API calls;
* :mod:`.watch`: what watches a run (grids, in-loop metrics, diagnostics, report, TensorBoard);
* :mod:`.step`: the loop and everything a step needs (setup, runner, optimizers, EMA, guard);
* :mod:`.world`: the distributed world (ranks, collectives, statistics over the ranks).

What training may import: ``reporting``, ``metrics``, the run layer, ``models``, ``losses``,
``data``, ``imaging``, ``config`` and the foundation. Nothing below imports training; the
facade (``ganforge.api``) and the CLI sit above it.
"""
