"""Benchmarks as a layer of the package: the results store (``store.py``) and the commands that
read it (``command.py``: ``ganforge bench status``).

The top room: it imports only ganforge's public API (``ganforge.config``, ``ganforge.errors``,
``ganforge.version``; the contract in ``pyproject.toml`` forbids the rest), and nothing below
imports it.
"""

from ganforge.bench.store import (Record, Store, StoreError, preset_fingerprint,
                                  settings_fingerprint)

__all__ = ["Record", "Store", "StoreError", "preset_fingerprint", "settings_fingerprint"]
