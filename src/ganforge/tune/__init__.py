"""``ganforge tune``: a time-budgeted hyperparameter search of a preset's config keys, on Optuna.

The top room beside the benchmarks: it trains through ganforge's public API only
(``ganforge.api``, ``ganforge.config``, ``ganforge.errors``, ``ganforge.bench``,
``ganforge.version``; the contract in ``pyproject.toml`` forbids the rest), and nothing below
imports it. Optuna is an optional extra (``pip install 'ganforge[tune]'``); only the modules
that run a study import it.

- ``space.py``: the searched keys (``KEY=DIST:ARGS``), typed and checked by the config;
- ``job.py``: one study (:class:`TuneJob`): budget, check points, the overrides of each run;
- ``samplers.py``: how each trial's values are picked (TPE, random, every combination of a grid);
- ``pruning.py``: the pruners and the ``on_metrics`` reporter that lets them stop a run;
- ``study.py``: the storage, what a study was made for, claiming trials under a shared lock,
  heartbeats and the retry of a trial whose worker went away;
- ``objective.py``: one trial = one run per seed, its value the mean;
- ``outputs.py`` / ``page.py``: ``best.toml``, the results store records, ``study.html``;
- ``verify.py``: ``--verify``, the winner against the base preset on fresh seeds;
- ``command.py``: the command line and the ``--workers`` processes.
"""
