"""Reporting: the statistics channel and the pages that explain a run.

* :class:`StatsCollector` takes named statistics (``Loss/D/real``, ``Prob/D(G(z))``) from
  anywhere, averages them without GPU syncs and hands each flushed record to its writers.
* Writers: :class:`ConsoleWriter`, :class:`JsonlWriter` (``stats.jsonl``),
  :class:`TensorBoardWriter`; :func:`read_jsonl` reads the JSONL back.
* Diagnostics (:mod:`.diagnostics`): named checks on the stats stream and the samples.
* Plots: :func:`plot_losses`; training curves grouped by meaning (:mod:`.curves`).
* Pages: ``report.html`` (:mod:`.report`, with sections drawn from a generator in
  :mod:`.generated`) and ``compare.html`` (:mod:`.compare`).

What it may import: the run layer (``ganforge.run``: the folder's files, loading G), metrics
(label accuracy, evaluators), ``imaging``, ``config`` and the foundation. Never ``training``,
``api`` or ``cli`` — the trainer hands its live G to :func:`~.report.build_report` instead.

Importing this package writes nothing, opens no window, switches no matplotlib backend and
touches no GPU; matplotlib and tensorboard are imported only when first used.
"""

from ganforge.fileio import read_jsonl
from ganforge.reporting.plots import moving_average, plot_losses
from ganforge.reporting.stats import StatsCollector, StatsWriter
from ganforge.reporting.writers import ConsoleWriter, JsonlWriter, TensorBoardWriter

__all__ = [
    "ConsoleWriter",
    "JsonlWriter",
    "StatsCollector",
    "StatsWriter",
    "TensorBoardWriter",
    "moving_average",
    "plot_losses",
    "read_jsonl",
]
