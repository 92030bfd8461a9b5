"""Mixed precision for the training loop: autocast around the forward passes, loss scaling for fp16.

``train.amp`` picks the mode:

- ``"none"``: everything in fp32;
- ``"bf16"``: G's and D's forward passes under ``torch.autocast(dtype=bfloat16)``. bfloat16 has
  fp32's exponent range, so gradients cannot underflow and no loss scaling is needed. Allowed on
  the CPU too (autocast supports it there), where it mostly saves memory bandwidth;
- ``"fp16"``: autocast to float16 plus one :class:`torch.amp.GradScaler` per optimizer (G and D
  each have their own loss scale: their gradients differ by orders of magnitude). CUDA only.

Where the losses are computed: the runner (``training/step/runner.py``) casts D's outputs to fp32
before the loss object sees them, so BCE, hinge, least squares and the Wasserstein means are
evaluated in fp32 whatever the mode. The gradient penalty (``losses/penalties.py``) turns
autocast off and runs D in fp32 on its interpolates: squaring small fp16 input gradients
underflows to 0 and the norm's backward then divides by 0 — the NaNs users of other toolkits
report with WGAN-GP under fp16. The penalty is part of D's loss, so the D scaler scales it with
the rest: the double backward then carries the scale S through fp32 second-order terms (no
overflow at S = 2^16), :meth:`GradScaler.step` unscales D's gradients, checks them for Inf/NaN
and skips the step (halving S) when an fp16 part of the graph overflowed.

The scalers' state (scale, growth tracker) is saved in every checkpoint and restored on resume.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Optional

import torch

from ganforge.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PHASES = ("G", "D")


def check_precision(mode: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run.

    Raises:
        ConfigError: fp16 off CUDA, or bf16 on a GPU without bfloat16 support.
    """
    if mode == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.amp=fp16 needs CUDA (the device is {device.type}); use "
                          "train.amp=bf16 or none")
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.amp=bf16 needs a GPU with bfloat16 support (Ampere or newer); "
                          "use train.amp=fp16 or none")
    if mode == "bf16" and device.type == "mps":
        raise ConfigError("train.amp=bf16 is not supported on MPS here; use train.amp=none")


class Precision:
    """Autocast context and (fp16) loss scaling for one run.

    Args:
        mode: ``"none"``, ``"bf16"`` or ``"fp16"`` (``train.amp``); call
            :func:`check_precision` first, this class does not refuse anything.
        device: the training device (autocast and the scalers are per device type).
    """

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode != "none" and mode not in DTYPES:
            raise ValueError(f"unknown precision {mode!r}")
        self.mode, self.device_type = mode, device.type
        self.dtype: Optional[torch.dtype] = DTYPES.get(mode)
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        if mode == "fp16":
            self.scalers = {name: torch.amp.GradScaler(device.type) for name in PHASES}

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> ContextManager[Any]:
        """Autocast to the run's dtype (a no-op context in fp32 runs)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def update(self, phase: str, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss``: zero the gradients, backward (scaled), step.

        Args:
            phase: ``"G"`` or ``"D"``: which loss scale to use.
            optimizer: the phase's optimizer.
            loss: () scalar loss with a graph.
        """
        optimizer.zero_grad(set_to_none=True)
        scaler = self.scalers.get(phase)
        if scaler is None:
            loss.backward()
            optimizer.step()
            return
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # unscales, skips the step when a gradient is Inf/NaN
        scaler.update()

    def scale(self, phase: str) -> Optional[float]:
        """The current loss scale of ``phase`` (fp16 only; one host sync)."""
        scaler = self.scalers.get(phase)
        return None if scaler is None else float(scaler.get_scale())

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """JSON-able: the mode and each scaler's scale and growth tracker."""
        return {"mode": self.mode,
                "scalers": {name: s.state_dict() for name, s in self.scalers.items()}}

    def load_state_dict(self, state: Optional[dict[str, Any]]) -> None:
        """Restore the loss scales of a resumed run.

        A checkpoint without scaler state (an fp32 or bf16 run, or one older than this option)
        leaves the scalers at their initial scale, which they adapt from within a few steps.
        """
        saved = (state or {}).get("scalers") or {}
        for name, scaler in self.scalers.items():
            if saved.get(name):
                scaler.load_state_dict(saved[name])
