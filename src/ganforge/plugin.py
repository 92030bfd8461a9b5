"""What a plugin may import: the public interface of every kind of component.

A third-party package adds a loss, a convergence aid, a model family, a dataset or a metric by
naming it in an entry-point group of its ``pyproject.toml``::

    [project.entry-points."ganforge.losses"]
    ralsgan = "my_package.loss:RaLSGANLoss"     # the object, registered under "ralsgan"
    [project.entry-points."ganforge.datasets"]
    rings = "my_package.data"                   # or a module that registers by decorator

Groups: ``ganforge.losses``, ``ganforge.aids``, ``ganforge.models``, ``ganforge.datasets``,
``ganforge.metrics``. The registries load them on their first lookup; from then on a plugin's
component is listed (``ganforge list``, marked with its package), configured and checked
(``--set loss.margin=2``, with its own settings), saved in ``config.json`` (which names the
package, so a run that needs it elsewhere says what to install) and reloaded by ``generate``,
``evaluate``, ``--resume`` and the report, exactly like a built-in one.

A plugin imports this module only — never ganforge's internals, which may change. What each
kind must provide:

- **loss**: a :class:`GANLoss` subclass with ``d_formula`` and ``g_formula`` (and optionally a
  ``Settings`` dataclass of its own ``loss.*`` settings, ``check``, ``d_penalty``, ...);
- **aid**: an :class:`Aid` subclass with ``enabled(cfg)`` and its hooks, and a ``Settings``
  dataclass (its keys join every loss's);
- **model family**: a :class:`ModelSpec` (its nets, ``args``, ``settings``);
- **dataset**: a builder ``(cfg) -> TensorData``, registered with ``settings=`` and, when it
  reads its root differently from a folder of downloadable files, ``info=DataRoot(...)``;
- **metric**: a function ``(ctx: EvalContext, **settings) -> MetricResult``.

Settings are declared with :func:`setting` and the rules beside it; ``ganforge list --details
NAME`` and the generated reference show them.
"""

from ganforge.data.base import NO_ROOT, DataRoot, TensorData
from ganforge.errors import ConfigError, DataError, GanforgeError
from ganforge.losses.aids.base import Aid, DBatch
from ganforge.losses.base import GANLoss, LossOutput
from ganforge.losses.interface import DiscriminatorView, PhasePlan
from ganforge.metrics.base import FeatureExtractor, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.models.base import (Discriminator, DOutput, Generator, ModelSpec, NetSettings,
                                  conditioning)
from ganforge.registry import AIDS, DATASETS, LOSSES, METRICS, MODELS
from ganforge.settings import (Rule, at_least, between, each, one_of, optional, positive,
                               setting)

__all__ = [
    "AIDS", "DATASETS", "LOSSES", "METRICS", "MODELS",
    "Aid", "ConfigError", "DBatch", "DOutput", "DataError", "DataRoot", "Discriminator",
    "DiscriminatorView", "PhasePlan",
    "EvalContext", "FeatureExtractor", "GANLoss", "GanforgeError", "Generator", "LossOutput",
    "MetricResult", "ModelSpec", "NO_ROOT", "NetSettings", "Rule", "TensorData", "at_least",
    "between", "conditioning", "each", "one_of", "optional", "positive", "setting",
]
