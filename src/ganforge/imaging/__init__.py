"""Pictures of samples: uint8 conversion, grids, PNGs, animated GIFs, toy-2D scatter frames.

This room knows nothing about runs: it turns tensors into pictures and files, for the run layer
(``Run.grid``), the metrics, the reports and the trainer alike.

- ``pictures.py``: (N, C, H, W) tensors in [-1, 1] to (H, W, 3) uint8 arrays, grids (with class
  labels), PNG files, off-screen matplotlib figures;
- ``animation.py``: the GIF of the grids over training;
- ``points.py``: (N, 2) toy samples as a scatter frame.

Every file is written through :func:`ganforge.fileio.atomic_path`, so a killed run never leaves a
half-written PNG or GIF.
"""

from ganforge.imaging.animation import save_animation
from ganforge.imaging.pictures import (agg_figure, figure_to_array, label_grid, make_grid,
                                       save_images, save_png, to_uint8)
from ganforge.imaging.points import scatter_image, to_plane

__all__ = [
    "agg_figure",
    "figure_to_array",
    "label_grid",
    "make_grid",
    "save_animation",
    "save_images",
    "save_png",
    "scatter_image",
    "to_plane",
    "to_uint8",
]
