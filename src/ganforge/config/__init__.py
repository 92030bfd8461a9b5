"""Typed run configuration: one resolved config, each setting declared by what uses it.

A run is described by :class:`Config`. It is resolved once — defaults, then a preset (a TOML file
in ``configs/``, which may name a ``base`` preset), then a user TOML file, then ``--set``
overrides — validated, and saved as ``config.json`` in the run folder.

- ``sections.py``: the settings every run has (optimiser, training, logging, evaluation,
  diagnostics) and the common part of the data, model and loss sections;
- ``components.py``: the data, model and loss sections, built from the chosen component's own
  declared settings (a dataset, a model family, a loss and every convergence aid declare theirs
  where they are defined, or in a plugin package);
- ``resolve.py``: presets, layers, overrides, saved configs; ``validate.py``: the checks;
- ``coerce.py``: ``--set`` text and TOML/JSON values into typed settings.

Unknown keys, wrong types and out-of-range values raise :class:`~ganforge.errors.ConfigError`
with the valid keys — for a component section, the keys that component takes.
"""

from ganforge.config.coerce import parse_value
from ganforge.config.components import (DataConfig, LossConfig, ModelConfig, check_components,
                                        section_type)
from ganforge.config.resolve import (BUDGET_KEYS, PRESET_DIR, TIME_RE, Config, apply_dict,
                                     apply_override, apply_overrides, describe_budget,
                                     from_dict, list_presets, parse_duration_minutes,
                                     preset_chain, resolve)
from ganforge.config.sections import (DataCommon, DiagnosticsConfig, EvalConfig, LogConfig,
                                      LossCommon, ModelCommon, OptimConfig, TrainConfig)
from ganforge.config.validate import metric_settings, validate

__all__ = [
    "BUDGET_KEYS", "PRESET_DIR", "TIME_RE", "Config", "DataCommon", "DataConfig",
    "DiagnosticsConfig", "EvalConfig", "LogConfig", "LossCommon", "LossConfig", "ModelCommon",
    "ModelConfig", "OptimConfig", "TrainConfig", "apply_dict", "apply_override",
    "apply_overrides", "check_components", "describe_budget", "from_dict", "list_presets",
    "metric_settings", "parse_duration_minutes", "parse_value", "preset_chain", "resolve",
    "section_type", "validate",
]
