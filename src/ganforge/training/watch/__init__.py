"""Watching a run: what people and tools see while it trains.

* :mod:`.progress`: fixed-noise grids per snapshot, then the GIF, final grid and loss plot;
* :mod:`.monitor`: in-loop metrics and the best checkpoint they pick;
* :mod:`.report`: ``environment.json``, the diagnostics and ``report.html`` rebuilds;
* :mod:`.trackers`: the experiment trackers of ``log.trackers`` (TensorBoard, MLflow, W&B);
* :mod:`.hooks`: :class:`~.hooks.Watchers`, all of the above behind the loop's hooks.

What it may import: the step room (for the types it watches), the distributed world,
``metrics``, ``reporting``, the run layer, ``imaging`` and the foundation. The loop never
imports this room; the launcher (``training.launch``) builds the watchers and hands them in.
"""
