"""Benchmarks as a layer of the package: the results store (``store.py``), benchmark specs
(``spec.py``), the one protocol every spec runs (``protocol.py``: budget, checkpoints at given
times, scores, one record per run), the runner (``runner.py``), the typical training loops the
presets are held to (``typical.py``) and the command (``command.py``: ``ganforge bench SPEC``,
``ganforge bench status``).

The top room: it imports only ganforge's public API (``ganforge.config``, ``ganforge.errors``,
``ganforge.version``; the contract in ``pyproject.toml`` forbids the rest), and nothing below
imports it.
"""

from ganforge.bench.store import (Record, Store, StoreError, preset_fingerprint,
                                  settings_fingerprint)

__all__ = ["Record", "Store", "StoreError", "preset_fingerprint", "settings_fingerprint"]
