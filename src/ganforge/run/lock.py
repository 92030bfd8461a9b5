"""One training process per run folder: ``RUN/.lock``, held with ``flock`` while training.

Two processes training into the same folder would interleave checkpoints, truncate each other's
``stats.jsonl`` and rotate away each other's files. ``ganforge train`` (a new run or
``--resume``) therefore takes an exclusive, non-blocking ``fcntl.flock`` on ``RUN/.lock`` and
writes its PID there for the error message a second process gets.

The kernel drops a ``flock`` when its holder exits, however it exits (SIGKILL included), so a
crashed run never leaves a stale lock: the file may remain, the lock does not. On platforms
without ``fcntl`` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Optional

from ganforge import fileio
from ganforge.errors import GanforgeError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLock:
    """Exclusive lock on a run folder, as a context manager.

    Args:
        run_dir: the run folder; created if missing (a new run), and removed again on release
            if this lock created it and it is still empty (a run that failed before writing).

    Raises:
        GanforgeError: on entry, when another process holds the folder (names its PID).
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: Optional[int] = None
        self._created = False

    def acquire(self) -> "RunLock":
        self._created = not self.run_dir.exists()
        fileio.ensure_dir(self.run_dir)
        if fcntl is None:
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                self._undo_create()
                raise GanforgeError(f"cannot create '{self.path}' ({err.strerror}); choose a "
                                    "writable output folder") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise GanforgeError(
                    f"run folder '{self.run_dir}' is in use by another ganforge process (PID "
                    f"{holder}); wait for it to finish or stop it, or train into another "
                    "folder") from None
            # The previous holder unlinks the file when it releases; if that happened between
            # our open and flock we hold an orphaned inode that protects nothing: retry.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            # Unlink while still holding the lock, so no one can lock the old inode after us.
            self.path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._undo_create()

    def _undo_create(self) -> None:
        if self._created:
            try:
                self.run_dir.rmdir()  # only succeeds when empty: never removes results
            except OSError:
                pass
            self._created = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.release()
