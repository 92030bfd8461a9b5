"""User-facing errors.

Every problem a user can fix (a bad config key, a missing dataset, a corrupt checkpoint) is raised
as a :class:`GanforgeError` whose message is one line naming the problem and the fix. The CLI
prints that line and exits with status 2, without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Optional, Sequence


class GanforgeError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line message with the fix."""


class ConfigError(GanforgeError):
    """Unknown key, wrong type, out-of-range value or an impossible combination."""


def plural(noun: str) -> str:
    """``noun`` in the plural, as the error messages name a kind of thing ("losses")."""
    return noun + ("es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def unknown_name(kind: str, name: str, valid: Sequence[str]) -> ConfigError:
    """The one-line error for a ``name`` that is not among ``valid`` (a preset, a model, ...).

    The closest valid name, when one is close enough to be a typo, comes first as "did you mean",
    then every valid name, so the line answers both "what did I mistype" and "what is there".
    """
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown {kind} '{name}'{hint}; valid {plural(kind)}: {', '.join(valid)}")


class DataError(GanforgeError):
    """A dataset that is missing, empty or unreadable."""


class CheckpointError(GanforgeError):
    """A checkpoint or run folder that cannot be read or does not match."""


class NonFiniteError(GanforgeError):
    """A loss or weight became NaN/Inf during training (the message names the step and loss)."""


class StopRun(Exception):
    """Raised by a caller's ``on_metrics`` callback (``ganforge.train(..., on_metrics=...)``) to
    end the run after the step just evaluated — a search pruning a bad setting, say.

    The run keeps that step as a stop signal does (a checkpoint marked with the reason, the
    stats line, the report, ``stopped.json``), so it can be read or resumed like any run; then
    :func:`ganforge.train` raises this same exception with ``run_dir`` and ``step`` filled in.
    Not a :class:`GanforgeError`: nothing went wrong.

    Attributes:
        reason: one line saying why (kept in the checkpoint and ``stopped.json``).
        run_dir: the run folder, once the run has stopped.
        step: the last step trained (and saved), once the run has stopped.
    """

    def __init__(self, reason: str = "stopped by the caller") -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_dir: Optional[Path] = None
        self.step: Optional[int] = None


class Interrupted(BaseException):
    """Training stopped by a signal (Ctrl-C, SIGTERM, SLURM's SIGUSR1) after saving its step.

    A ``BaseException``, like ``KeyboardInterrupt``: it ends the command, and no ``except
    Exception`` on the way up may mistake it for an error to handle. ``str(err)`` is the one
    line the user sees (what was saved and the command that resumes it).

    Attributes:
        exit_code: the process's exit status: 128 + the signal's number (130 for SIGINT,
            143 for SIGTERM), as a shell reports a process ended by that signal.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
