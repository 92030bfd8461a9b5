"""ganforge: train, watch, sample and compare GANs.

Importing has no side effects (no CUDA calls, network or disk writes); the heavy modules load
on first use of the API.
"""

from __future__ import annotations

from typing import Any

from ganforge.version import __version__

__all__ = ["train", "load_run", "resolve", "Config", "Run", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import ganforge` (and `ganforge --help`) fast.
    if name in ("train", "load_run", "Run"):
        from ganforge import api

        return getattr(api, name)
    if name in ("resolve", "Config"):
        from ganforge import config

        return getattr(config, name)
    raise AttributeError(f"module 'ganforge' has no attribute '{name}'")
