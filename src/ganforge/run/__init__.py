"""The run layer: reading and writing a run folder, below training, metrics and reporting.

What it owns:

* :mod:`.layout`: the name of every file a run folder holds, and where a new run goes;
* :mod:`.checkpoint`: checkpoints (safetensors + a JSON sidecar, atomic, checksummed, rotated);
* :mod:`.lock`: one training process per run folder;
* :mod:`.folder`: :class:`RunFolder`, what the folder's JSON files say (no weights loaded);
* :mod:`.sampling`: latents, labels and G's samples in eval mode;
* :mod:`.loaded`: :func:`load_run` / :class:`Run`, a trained G loaded back for sampling.

What it may import: the foundation (``errors``, ``fileio``, ``config``, ``runtime``), ``models``
and ``imaging``. Never ``training``, ``metrics``, ``reporting``, ``api`` or ``cli``: they all
stand on this layer (the layering contract in ``pyproject.toml`` checks it).
"""

from ganforge.run.folder import RunFolder
from ganforge.run.loaded import Run, load_config, load_run

__all__ = ["Run", "RunFolder", "load_config", "load_run"]
