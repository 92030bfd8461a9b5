"""One reporting channel for training statistics.

Anything that wants a number reported (a loss object, the loop, a metric) calls
``stats.add("Loss/D/real", tensor)`` with a hierarchical name. The collector keeps a running
mean per name until :meth:`StatsCollector.flush`, which turns the means into Python floats once,
hands the record to every attached writer (console, JSONL, TensorBoard) and starts over.

Why tensors are kept as tensors: ``float(loss)`` or ``loss.item()`` on a CUDA tensor blocks the
host until the GPU has caught up. Doing that for every statistic at every step serialises the
training loop. Here each ``add`` only launches a tiny asynchronous reduction on the tensor's own
device; the one host transfer per device happens in ``flush``, typically every few hundred steps.
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Optional, Protocol

import numpy as np
import torch

__all__ = ["StatsCollector", "StatsWriter"]


class StatsWriter(Protocol):
    """Anything that can receive a flushed record (see :mod:`ganforge.reporting.writers`)."""

    def write_scalars(self, step: int, record: Mapping[str, float]) -> None:
        """Write one record of ``name -> value`` at training step ``step``."""


def _accumulation_dtype(device: torch.device) -> torch.dtype:
    # float64 keeps long running sums exact enough; MPS has no float64, so fall back there.
    return torch.float32 if device.type == "mps" else torch.float64


def _to_python_float(value: Any) -> float:
    """Convert an ``extra`` value (number, 0-d tensor/array) to a float, syncing if needed."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"extra values must be scalars, got shape {tuple(value.shape)}")
        return float(value.detach().cpu().item())
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"extra values must be scalars, got an array of shape {value.shape}")
        return float(value.reshape(()))
    return float(value)


class StatsCollector:
    """Collects named statistics and reports their means at every flush.

    Names are hierarchical strings such as ``Loss/D/real``, ``Loss/G``, ``Prob/D(x)`` and
    ``Prob/D(G(z))``. A tensor value with several elements contributes every element to the mean
    (so adding a (N,) batch of per-sample losses averages over all samples seen since the last
    flush, however the batches were sized).

    Non-finite values are kept: if any NaN was added under a name, its mean is NaN; writers decide
    how to store it (JSONL writes ``null``).

    Example::

        stats = StatsCollector()
        stats.attach(JsonlWriter(run_dir / "stats.jsonl"))
        ...
        stats.add("Loss/D", loss_d)              # no GPU sync
        stats.add_many({"Prob/D(x)": p_real.mean(), "Prob/D(G(z))": p_fake.mean()})
        ...
        record = stats.flush(step, extra={"Speed/images_per_s": ips})

    Attributes:
        latest: the last record returned by :meth:`flush` (empty before the first flush).
        latest_step: the step of that record, or None before the first flush.
    """

    def __init__(self) -> None:
        # Per name: a host-side float sum (Python numbers), an on-device tensor sum (tensors),
        # and the element count, which is always known on the host (numel), so no sync.
        self._host_sums: dict[str, float] = {}
        self._tensor_sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._writers: list[StatsWriter] = []
        self.latest: dict[str, float] = {}
        self.latest_step: Optional[int] = None

    # ------------------------------------------------------------------ feeding
    def add(self, name: str, value: torch.Tensor | float) -> None:
        """Add one value (or a tensor of values) to the running mean of ``name``.

        Args:
            name: hierarchical statistic name, e.g. ``"Loss/D/real"``.
            value: a Python number, a NumPy array/scalar, or a tensor of any shape (all elements
                count; an empty tensor is ignored). Tensors are detached and reduced on their own
                device without synchronising with the host.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"statistic names must be non-empty strings, got {name!r}")
        if isinstance(value, torch.Tensor):
            self._add_tensor(name, value)
        elif isinstance(value, np.ndarray):
            if value.size:
                self._add_host(name, float(np.sum(value, dtype=np.float64)), int(value.size))
        elif isinstance(value, (numbers.Real, np.number)):
            self._add_host(name, float(value), 1)
        else:
            kind = type(value).__name__
            raise TypeError(f"cannot report {name!r}: expected a number or tensor, got {kind}")

    def add_many(self, values: Mapping[str, torch.Tensor | float]) -> None:
        """Add several statistics at once; ``values`` maps names to values as in :meth:`add`."""
        for name, value in values.items():
            self.add(name, value)

    def _add_host(self, name: str, total: float, count: int) -> None:
        self._host_sums[name] = self._host_sums.get(name, 0.0) + total
        self._counts[name] = self._counts.get(name, 0) + count

    def _add_tensor(self, name: str, value: torch.Tensor) -> None:
        count = value.numel()
        if count == 0:
            return
        value = value.detach()
        previous = self._tensor_sums.get(name)
        if previous is not None and previous.device != value.device:
            # Rare (a statistic reported from two devices); moving costs a copy, not a wrong mean.
            value = value.to(previous.device)
        total = value.to(_accumulation_dtype(value.device)).sum()
        self._tensor_sums[name] = total if previous is None else previous + total
        self._counts[name] = self._counts.get(name, 0) + count

    # ------------------------------------------------------------------ reporting
    def attach(self, writer: StatsWriter) -> StatsWriter:
        """Send every future flushed record to ``writer`` (anything with ``write_scalars``).

        Returns:
            The writer, so ``jsonl = stats.attach(JsonlWriter(path))`` keeps a handle to close.
        """
        if not callable(getattr(writer, "write_scalars", None)):
            raise TypeError(f"{type(writer).__name__} has no write_scalars(step, record) method")
        self._writers.append(writer)
        return writer

    def detach(self, writer: StatsWriter) -> None:
        """Stop sending records to ``writer`` (it is not closed)."""
        self._writers = [w for w in self._writers if w is not writer]

    @property
    def writers(self) -> tuple[StatsWriter, ...]:
        """The attached writers, in the order records are passed to them."""
        return tuple(self._writers)

    @property
    def names(self) -> list[str]:
        """Names with at least one value since the last flush, in first-seen order."""
        return list(self._counts)

    def _tensor_means(self) -> dict[str, float]:
        """Move all on-device sums to the host with one transfer per device."""
        by_device: dict[torch.device, list[str]] = {}
        for name, total in self._tensor_sums.items():
            by_device.setdefault(total.device, []).append(name)
        sums: dict[str, float] = {}
        for names in by_device.values():
            # All sums on one device share its accumulation dtype, so they stack without casts.
            stacked = torch.stack([self._tensor_sums[n] for n in names])
            for n, v in zip(names, stacked.cpu().tolist()):
                sums[n] = float(v)
        return sums

    def flush(self, step: int, extra: Optional[Mapping[str, Any]] = None) -> dict[str, float]:
        """Compute the means since the last flush, reset, and pass the record to the writers.

        Args:
            step: training step (or image count) the record belongs to.
            extra: values reported as they are rather than averaged, e.g.
                ``{"Speed/images_per_s": 812.5, "Progress/epoch": 3, "Time/elapsed_s": 61.2}``.
                Scalars only (numbers, 0-d tensors/arrays); they override same-named means.

        Returns:
            ``{name: mean}`` for every name added since the last flush (first-seen order),
            followed by ``extra``. Values are Python floats; NaN/inf are kept as such.
        """
        tensor_sums = self._tensor_means()
        record: dict[str, float] = {}
        for name, count in self._counts.items():
            total = self._host_sums.get(name, 0.0) + tensor_sums.get(name, 0.0)
            record[name] = total / count
        for name, value in (extra or {}).items():
            record[str(name)] = _to_python_float(value)
        self.reset()
        self.latest = dict(record)
        self.latest_step = int(step)
        for writer in self._writers:
            writer.write_scalars(int(step), dict(record))
        return record

    def state_dict(self) -> dict[str, Any]:
        """What was accumulated since the last flush, JSON-able (one sync per device).

        A checkpoint taken between two flushes stores it, so the resumed run reports the same
        means. Tensor sums travel as Python floats, which hold a float64 (or float32) sum
        exactly, and come back as tensors, so the resumed sums add up in the same order.
        """
        return {"host_sums": dict(self._host_sums), "tensor_sums": self._tensor_means(),
                "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any], device: str | torch.device) -> None:
        """Replace the pending sums by ``state`` (from :meth:`state_dict`); tensor sums go to
        ``device`` (the training device)."""
        self.reset()
        dtype = _accumulation_dtype(torch.device(device))
        self._host_sums.update({str(k): float(v) for k, v in state.get("host_sums", {}).items()})
        self._tensor_sums.update({str(k): torch.tensor(float(v), dtype=dtype, device=device)
                                  for k, v in state.get("tensor_sums", {}).items()})
        self._counts.update({str(k): int(v) for k, v in state.get("counts", {}).items()})

    def reset(self) -> None:
        """Drop everything accumulated since the last flush, without reporting it."""
        self._host_sums.clear()
        self._tensor_sums.clear()
        self._counts.clear()

    def close(self) -> None:
        """Close every attached writer that has a ``close`` method and detach them all."""
        for writer in self._writers:
            close = getattr(writer, "close", None)
            if callable(close):
                close()
        self._writers.clear()

    def __repr__(self) -> str:
        return f"StatsCollector(pending={self.names}, writers={len(self._writers)})"

