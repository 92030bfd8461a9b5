"""Training never writes into a data folder: an image folder and a CelebA folder stay
byte-identical, writable or read-only, and the decoded images go to the user cache.

Two checks each time: a snapshot of the folder (every path, its kind, size, modification time
and the SHA-256 of its bytes) before and after, and an audit hook that records every attempt to
open a file for writing, create, rename, remove or re-time anything below the folder. The hook is
what keeps the read-only case meaningful as root, whom the permission bits do not stop.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from ganforge.cli import main
from tests.conftest import fast_overrides

# Audit events that change the file system (os.replace raises "os.rename", os.unlink
# "os.remove"); "open" is judged by its mode and flags.
CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.chown", "os.utime",
           "os.truncate", "os.link", "os.symlink", "shutil.rmtree", "shutil.move"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class WriteWatch:
    """Records the writes below one folder (``watched``), for as long as it is set."""

    def __init__(self) -> None:
        self.watched: Optional[str] = None
        self.seen: list[tuple[str, str]] = []

    def below(self, path: Any) -> bool:
        if isinstance(path, int) or path is None:
            return False
        try:
            full = os.path.realpath(os.fsdecode(os.fspath(path)))
        except (TypeError, ValueError):
            return False
        return full == self.watched or full.startswith(self.watched + os.sep)

    def __call__(self, event: str, args: tuple) -> None:
        if self.watched is None or not args:
            return
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None))[:3]
            writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                      else bool((flags or 0) & WRITE_FLAGS))
            if writes and self.below(path):
                self.seen.append((event, os.fsdecode(os.fspath(path))))
        elif event in CHANGES and any(self.below(a) for a in args[:2]):
            self.seen.append((event, repr(args[:2])))


WATCH = WriteWatch()
sys.addaudithook(WATCH)  # hooks cannot be removed: this one is idle while nothing is watched


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry below ``folder`` (``folder`` itself as "."): kind, mode, size, mtime, SHA-256."""
    out: dict[str, tuple] = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[path.relative_to(folder).as_posix()] = (
            stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size if digest else None,
            st.st_mtime_ns, digest)
    return out


def set_writable(folder: Path, writable: bool) -> None:
    """chmod the whole tree: a-w (files 0444, folders 0555), or back to 0644 / 0755."""
    for path in sorted(folder.rglob("*"), reverse=True) + [folder]:
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


def train(data_root: Path, out: Path, dataset: str, capsys) -> list[str]:
    """Two steps of the MLP GAN on ``dataset`` at 8 px, through the CLI; returns stdout's lines."""
    sets = fast_overrides(2, batch=2) + [
        f"data.name={dataset}", "data.image_size=8", "data.split=train", "data.download=false",
        "log.tensorboard=false"]
    argv = ["train", "--preset", "gan-mnist", "--data-root", str(data_root), "--out", str(out)]
    code = main(argv + [a for s in sets for a in ("--set", s)])
    out_text, err = capsys.readouterr()
    assert code == 0, err
    return out_text.splitlines()


def train_untouched(data_root: Path, watched: Path, out: Path, dataset: str, writable: bool,
                    capsys) -> list[str]:
    """Train twice (the second run reuses the cache) and check ``watched`` was never touched."""
    if not writable:
        set_writable(watched, False)
    try:
        before = snapshot(watched)
        WATCH.watched, WATCH.seen = os.path.realpath(watched), []
        try:
            lines = train(data_root, out / "first", dataset, capsys)
            lines += train(data_root, out / "second", dataset, capsys)
        finally:
            WATCH.watched = None
        assert WATCH.seen == []
        assert snapshot(watched) == before
    finally:
        if not writable:
            set_writable(watched, True)
    return lines


def cache_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "decoded images" in line]


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
def test_training_on_an_image_folder_leaves_it_untouched(tmp_path, save_image, capsys,
                                                         ganforge_home, writable):
    folder = tmp_path / "pets"
    for cls, count in (("cats", 3), ("dogs", 2)):
        for i in range(count):
            save_image(folder / cls / f"{i}.png", size=(20, 14))
    (folder / "README.txt").write_text("five pets")
    lines = train_untouched(folder, folder, tmp_path / "runs", "image-folder", writable, capsys)
    (entry,) = (ganforge_home / "decoded").rglob("*.npy")
    (made,) = cache_lines(lines)  # made by the first run, read by the second
    assert made.startswith(f"cached 5 decoded images of {folder.resolve()} (")
    assert made.endswith(f") in {entry}")


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
def test_training_on_a_celeba_folder_leaves_it_untouched(tmp_path, fake_celeba, capsys,
                                                         ganforge_home, writable):
    fake_celeba(tmp_path / "data", n=6)
    lines = train_untouched(tmp_path / "data", tmp_path / "data", tmp_path / "runs", "celeba",
                            writable, capsys)
    (entry,) = (ganforge_home / "decoded").rglob("*.npy")
    assert entry.name.startswith("celeba-train-8px-")
    (made,) = cache_lines(lines)
    assert made.startswith(f"cached 2 decoded images of {(tmp_path / 'data' / 'celeba').resolve()}")


def test_an_unwritable_home_is_a_note_not_a_failure(tmp_path, save_image, capsys, monkeypatch):
    folder = tmp_path / "pets"
    for i in range(4):
        save_image(folder / f"{i}.png", size=(20, 14))
    home = tmp_path / "home-is-a-file"
    home.write_text("not a folder: nothing can be created below it, even by root")
    monkeypatch.setenv("GANFORGE_HOME", str(home))
    lines = train_untouched(folder, folder, tmp_path / "runs", "image-folder", True, capsys)
    notes = cache_lines(lines)
    assert len(notes) == 2  # both runs decoded, and said why
    for note in notes:
        assert note.startswith(f"note: could not cache the decoded images in {home / 'decoded'}")
        assert "(Not a directory); they will be decoded again next time" in note
    assert (tmp_path / "runs" / "second" / "checkpoints").is_dir()


def test_the_watch_sees_every_kind_of_write(tmp_path):
    """The audit hook is what the tests above rely on as root: it must see these."""
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "old.txt").write_text("x")
    WATCH.watched, WATCH.seen = os.path.realpath(folder), []
    try:
        (folder / "a.txt").write_text("a")                      # open(..., "w")
        os.close(os.open(folder / "b", os.O_WRONLY | os.O_CREAT))  # os.open with write flags
        (folder / "sub").mkdir()
        os.replace(folder / "a.txt", folder / "c.txt")
        os.utime(folder / "old.txt")
        (folder / "old.txt").unlink()
        (folder / "c.txt").read_text()                           # reading is fine
        (tmp_path / "elsewhere.txt").write_text("not below the folder")
    finally:
        WATCH.watched = None
    assert [event for event, _ in WATCH.seen] == ["open", "open", "os.mkdir", "os.rename",
                                                  "os.utime", "os.remove"]
