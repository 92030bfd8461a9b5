"""Stopping a run on a signal without losing a step: Ctrl-C, ``docker stop``, pre-emption.

While the loop runs, :class:`StopSignals` holds SIGINT (Ctrl-C), SIGTERM (``kill``, ``docker
stop``, a cluster ending a job) and SIGUSR1 (what SLURM sends a job before it pre-empts it, with
``--signal=USR1@120``). The first of them is only *noted*: the loop finishes the step it is in,
writes a checkpoint of it, rebuilds the report and ends with :class:`~ganforge.errors.Interrupted`
(exit status 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM). A step is never cut in
half, so the saved state is one an uninterrupted run passes through, and a resumed run ends
bit-identical to it.

A second signal is the user insisting: it aborts at once (as a plain Ctrl-C would), wherever the
run is, even in the middle of writing that checkpoint. Every file is written atomically, so the
abort leaves no partial file, and the message names the last complete checkpoint. One exception:
a second signal of the same kind within :attr:`StopSignals.echo_window_s` of the first is the
same request passed on — a terminal's Ctrl-C reaches every process of a ``torchrun`` launch, and
torchrun forwards it to its workers a moment later.

Under ``torchrun`` only some ranks may hear a signal (or hear it a step apart); the loop agrees on
the flag across ranks every step (``World.agree``), so every rank stops after the same step and
rank 0 writes.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Callable, Optional

from ganforge.errors import Interrupted
from ganforge.run import checkpoint as ckpt
from ganforge.training.world.ranks import World

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1")
                if hasattr(signal, name))  # Windows has no SIGUSR1


def stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StopSignals:
    """Turns the first stop signal into a request the loop reads between steps.

    Use as a context manager around the loop; the previous handlers come back on exit. Outside
    the main thread (a run started from a worker thread) Python cannot install handlers; then
    nothing is caught and signals act as they would without ganforge.

    Args:
        announce: where the one-line notice of the first signal goes (stderr on rank 0; the
            other ranks of a torchrun launch stay quiet).
        linger: after the run stopped on a signal, keep ignoring signals instead of giving the
            old handlers back. For torchrun workers, which only exit then: a launcher that sees
            one rank end stops the others with SIGTERM, which must not cut rank 0's exit
            short (it would report the rank as killed although its step is saved).

    Attributes:
        requested: the first signal received (None while there is none).
    """

    echo_window_s: float = 1.0  # a repeat this soon is the launcher forwarding the first signal

    def __init__(self, announce: Callable[[str], None] = stderr_line,
                 linger: bool = False) -> None:
        self.announce, self.linger = announce, linger
        self.requested: Optional[signal.Signals] = None
        self._first_at = 0.0
        self._previous: dict[int, object] = {}

    # ------------------------------------------------------------------ the handlers
    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: Optional[type], *exc: object) -> None:
        stopped = kind is not None and issubclass(kind, Interrupted)
        for sig, handler in self._previous.items():
            if stopped and self.linger:
                signal.signal(sig, signal.SIG_IGN)
                continue
            # None: the old handler was not set from Python; the default is the nearest thing.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # type: ignore
        self._previous.clear()

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        sig = signal.Signals(signum)
        now = time.monotonic()
        if self.requested is None:
            self.requested, self._first_at = sig, now
            self.announce(f"ganforge: {sig.name} received: finishing this step and saving it "
                          "(send it again to abort without saving)")
            return
        if sig == self.requested and now - self._first_at < self.echo_window_s:
            return
        # The user insists: stop where we are. KeyboardInterrupt unwinds like Ctrl-C does
        # without handlers, and the atomic writes on the way remove their temporary files.
        raise KeyboardInterrupt

    # ------------------------------------------------------------------ what the loop reads
    def request(self, sig: signal.Signals) -> None:
        """Note ``sig`` as if it had been received (another rank heard it)."""
        if self.requested is None:
            self.requested, self._first_at = sig, time.monotonic()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process that a signal ended."""
        return 128 + int(self.requested or signal.SIGINT)

    @property
    def name(self) -> str:
        return (self.requested or signal.SIGINT).name


def resume_command(run_dir: Path, world: World) -> str:
    """The command that continues ``run_dir`` as it was launched (one process or torchrun)."""
    run = shlex.quote(str(run_dir))
    if not world.distributed:
        return f"ganforge train --resume {run}"
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world.world_size))
    if per_node == world.world_size:
        return f"torchrun --nproc_per_node {per_node} -m ganforge train --resume {run}"
    return f"the same torchrun launch with -m ganforge train --resume {run}"


def aborted_line(run_dir: Path, world: World, what: str) -> str:
    """``what`` happened and the newest checkpoint that verifies is what is left: the line that
    says so and how to go on from it (rank 0 says it; "" on the other ranks)."""
    if not world.is_main:
        return ""
    newest = ckpt.newest_complete(run_dir)
    if newest is None:
        return f"{what}, before any checkpoint was complete; nothing to resume, train again"
    path, saved_step = newest
    return (f"{what}; the last complete checkpoint is checkpoints/{path.stem} (step "
            f"{saved_step}); resume with: {resume_command(run_dir, world)}")
