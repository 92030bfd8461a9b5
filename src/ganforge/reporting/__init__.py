"""Reporting: one statistics channel and the files a run leaves for people to look at.

* :class:`StatsCollector` takes named statistics (``Loss/D/real``, ``Prob/D(G(z))``) from
  anywhere, averages them without GPU syncs and hands each flushed record to its writers.
* Writers: :class:`ConsoleWriter`, :class:`JsonlWriter` (``stats.jsonl``),
  :class:`TensorBoardWriter`; :func:`read_jsonl` reads the JSONL back.
* Images: :func:`make_grid`, :func:`label_grid`, :func:`save_png`, :func:`save_images`,
  :func:`save_animation` (GIF), :func:`scatter_image` (toy 2-D data).
* Plots: :func:`plot_losses`.

Importing this package writes nothing, opens no window, switches no matplotlib backend and
touches no GPU; matplotlib and tensorboard are imported only when first used.
"""

from ganforge.reporting.images import (
    label_grid,
    make_grid,
    save_animation,
    save_images,
    save_png,
    scatter_image,
    to_uint8,
)
from ganforge.reporting.plots import moving_average, plot_losses
from ganforge.reporting.stats import StatsCollector, StatsWriter
from ganforge.reporting.writers import ConsoleWriter, JsonlWriter, TensorBoardWriter, read_jsonl

__all__ = [
    "ConsoleWriter",
    "JsonlWriter",
    "StatsCollector",
    "StatsWriter",
    "TensorBoardWriter",
    "label_grid",
    "make_grid",
    "moving_average",
    "plot_losses",
    "read_jsonl",
    "save_animation",
    "save_images",
    "save_png",
    "scatter_image",
    "to_uint8",
]
