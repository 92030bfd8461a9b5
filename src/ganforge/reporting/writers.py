"""Writers that receive the records flushed by :class:`~ganforge.reporting.stats.StatsCollector`.

Each writer has ``write_scalars(step, record)`` and ``close()``:

* :class:`ConsoleWriter`: one short line per flush.
* :class:`JsonlWriter`: ``stats.jsonl`` in the run folder, one JSON object per flush. It is the
  one file here that is appended to rather than replaced atomically: every line is written with
  a single ``write`` and flushed at once, so a killed run keeps all complete lines and at most a
  torn last line, which :func:`~ganforge.fileio.read_jsonl` skips and the next :class:`JsonlWriter` cuts off.
* :class:`TensorBoardWriter`: scalars and images for ``tensorboard --logdir``. TensorBoard's event
  files are append-only streams owned by ``SummaryWriter``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.fileio import parse_jsonl, read_jsonl, write_bytes, write_error  # noqa: F401

__all__ = ["ConsoleWriter", "JsonlWriter", "TensorBoardWriter", "read_jsonl"]


def _json_value(value: Any) -> Any:
    """Map a record value to something strict JSON accepts: non-finite floats become null."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    value = float(value)
    return value if math.isfinite(value) else None


class JsonlWriter:
    """Appends one JSON object per flush: ``{"step": s, "Loss/D": ..., ...}``.

    Args:
        path: the ``.jsonl`` file; parent folders are created. An existing file is appended to
            (resuming a run); call :meth:`truncate_after` first to drop records past the resumed
            step.
        fsync: also ``os.fsync`` after every line. Flushing to the OS already survives a killed
            process; fsync only adds protection against power loss, at a cost per flush.
    """

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        self._file = open(self.path, "a", encoding="utf-8")

    def _drop_torn_tail(self) -> None:
        # A run killed mid-line leaves bytes without a newline; appending after them would glue
        # the next record onto the torn one and corrupt both.
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n")
            write_bytes(self.path, data[: cut + 1] if cut >= 0 else b"")

    def write_scalars(self, step: int, record: Mapping[str, Any]) -> None:
        """Append ``{"step": step, **record}`` as one line and flush it to the OS."""
        if self._file.closed:
            raise ValueError(f"JsonlWriter for '{self.path}' is closed")
        obj = {"step": int(step)}
        obj.update({str(k): _json_value(v) for k, v in record.items() if k != "step"})
        # allow_nan=False guarantees strict JSON: a stray NaN raises here instead of writing
        # a token that other JSON readers reject.
        line = json.dumps(obj, allow_nan=False) + "\n"
        try:
            self._file.write(line)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError as err:
            raise GanforgeError(write_error(self.path, err)) from err

    def close(self) -> None:
        """Close the file; further writes raise."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def truncate_after(path: str | os.PathLike[str], step: int) -> int:
        """Keep only records with ``record["step"] <= step``, rewriting the file atomically.

        Used when a run resumes from a checkpoint at ``step``: records logged after that
        checkpoint describe training that is about to be redone. Call it before opening a
        :class:`JsonlWriter` on the same file (an open writer would keep appending to the
        replaced file). Kept lines are copied byte for byte; a torn last line is dropped.

        Args:
            path: the ``.jsonl`` file; a missing file is left missing.
            step: the last step to keep.

        Returns:
            The number of records removed.
        """
        path = Path(path)
        if not path.is_file():
            return 0
        parsed = parse_jsonl(path)
        kept = [line for line, record in parsed if _step_of(record) <= step]
        data = b"".join(line + b"\n" for line in kept)
        write_bytes(path, data)
        return len(parsed) - len(kept)


def _step_of(record: Mapping[str, Any]) -> float:
    step = record.get("step")
    # A record without a usable step cannot be placed before the checkpoint, so it goes.
    usable = isinstance(step, (int, float)) and not isinstance(step, bool)
    return float(step) if usable else math.inf


class ConsoleWriter:
    """Prints one line per flush, e.g. ``step 1200 | Loss/D 0.6931 | Loss/G 0.7012``.

    Args:
        keys: names to print, in this order; None prints every name in the record.
        print_fn: where lines go; pass ``tqdm.write`` so lines do not break a progress bar.
        precision: significant digits per value.
    """

    def __init__(
        self,
        keys: Optional[Sequence[str]] = None,
        print_fn: Callable[[str], Any] = print,
        precision: int = 4,
    ) -> None:
        self.keys = list(keys) if keys is not None else None
        self.print_fn = print_fn
        self.precision = precision

    def format(self, step: int, record: Mapping[str, Any]) -> str:
        """The line :meth:`write_scalars` prints."""
        keys = self.keys if self.keys is not None else list(record)
        parts = [f"step {step}"]
        for key in keys:
            if key in record:
                parts.append(f"{key} {float(record[key]):.{self.precision}g}")
        return " | ".join(parts)

    def write_scalars(self, step: int, record: Mapping[str, Any]) -> None:
        """Print the formatted line."""
        self.print_fn(self.format(step, record))

    def close(self) -> None:
        """Nothing to release; present so all writers close the same way."""


class TensorBoardWriter:
    """Scalars and images for TensorBoard, through ``torch.utils.tensorboard.SummaryWriter``.

    Args:
        log_dir: folder for the event files (created on construction, not on import).
        flush_secs: how often ``SummaryWriter`` flushes pending events on its own.
        purge_step: a resumed run's first step; TensorBoard hides the earlier run's events at
            and after it, which the resumed run writes again.
    """

    def __init__(self, log_dir: str | os.PathLike[str], flush_secs: int = 30,
                 purge_step: Optional[int] = None) -> None:
        # Imported here: the tensorboard stack is slow to import and only needed when used.
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs,
                                     purge_step=purge_step)

    def write_scalars(self, step: int, record: Mapping[str, Any]) -> None:
        """Add every numeric entry of ``record`` as a scalar at ``step`` (NaN kept as NaN)."""
        for name, value in record.items():
            if name == "step" or value is None or isinstance(value, str):
                continue
            self._writer.add_scalar(str(name), float(value), global_step=int(step))

    def write_image(self, tag: str, step: int, image_hwc_uint8: np.ndarray) -> None:
        """Add an image.

        Args:
            tag: image name, e.g. ``"Samples/fixed_z"``.
            step: training step.
            image_hwc_uint8: (H, W, 3) or (H, W, 1) uint8 array, or (H, W) grayscale.
        """
        image = np.asarray(image_hwc_uint8)
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, C) uint8 image, got {image.dtype} {image.shape}")
        self._writer.add_image(tag, image, global_step=int(step), dataformats="HWC")

    def flush(self) -> None:
        """Write pending events to disk now."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
