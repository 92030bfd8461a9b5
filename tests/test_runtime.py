"""The ganforge home: $GANFORGE_HOME, else the platform's cache folder; refstats below it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ganforge import runtime
from ganforge.data.imagefiles import entry_folder
from ganforge.metrics.reference import cache_root


@pytest.fixture
def no_home(tmp_path, monkeypatch):
    """No $GANFORGE_HOME, and a fake user home at tmp_path/user; returns that user home."""
    monkeypatch.delenv("GANFORGE_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "user"))
    return tmp_path / "user"


def test_ganforge_home_env_wins(no_home, monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "scratch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.ganforge_home() == tmp_path / "scratch"
    monkeypatch.setenv("GANFORGE_HOME", "~/gf")
    assert runtime.ganforge_home() == no_home / "gf"
    monkeypatch.setenv("GANFORGE_HOME", "  ")  # blank: as if unset
    monkeypatch.setattr(sys, "platform", "linux")
    assert runtime.ganforge_home() == tmp_path / "xdg" / "ganforge"


@pytest.mark.parametrize("platform, xdg, local, expected", [
    ("linux", None, None, ".cache/ganforge"),
    ("linux", "XDG", None, "XDG/ganforge"),
    ("linux", "relative/xdg", None, ".cache/ganforge"),  # the XDG spec ignores a relative one
    ("freebsd13", None, None, ".cache/ganforge"),
    ("darwin", "XDG", None, "Library/Caches/ganforge"),
    ("win32", None, "LOCAL", "LOCAL/ganforge/Cache"),
    ("win32", None, None, "AppData/Local/ganforge/Cache"),
])
def test_platform_cache_folders(no_home, monkeypatch, tmp_path, platform, xdg, local, expected):
    monkeypatch.setattr(sys, "platform", platform)
    if xdg is not None:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg if "/" in xdg else str(no_home / xdg))
    if local is not None:
        monkeypatch.setenv("LOCALAPPDATA", str(no_home / local))
    assert runtime.ganforge_home() == no_home / expected


def test_every_cache_lives_below_the_one_home(no_home, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    assert cache_root() == no_home / ".cache" / "ganforge" / "refstats"
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "scratch"))
    assert cache_root() == tmp_path / "scratch" / "refstats"
    decoded = entry_folder(tmp_path / "data")
    assert decoded.parent == tmp_path / "scratch" / "decoded"
    assert decoded.name.startswith("data-") and len(decoded.name) == len("data-") + 16
