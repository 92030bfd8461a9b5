"""The user cache under the ganforge home: its layout, and ``ganforge cache list|clear``.

ganforge never writes into a data folder. What it derives from data and keeps to save time
lives under :func:`ganforge.runtime.ganforge_home`, one sub-folder per kind of entry:

* ``decoded/<data folder name>-<hash of its resolved path>/<stem>-<key>.npy`` and ``.json``:
  images decoded from files (``celeba``, ``image-folder``; :mod:`ganforge.data.imagefiles`);
* ``refstats/<stem>.safetensors`` and ``.json``: features and statistics of reference data
  (:mod:`ganforge.metrics.reference`).

Every entry is a JSON file of metadata beside a data file of the same stem, so the listing reads
the folders alone and never imports the room that wrote an entry (``metrics`` is above ``data``).
A data file without its JSON (a write cut short) is listed as incomplete, so ``clear`` removes
it too. Removing an entry only costs the time to rebuild it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ganforge.errors import GanforgeError
from ganforge.registry import Registry
from ganforge.runtime import HOME_ENV, ganforge_home

DECODED_DIR = "decoded"    # sub-folder of the ganforge home for decoded images
REFSTATS_DIR = "refstats"  # sub-folder of the ganforge home for reference statistics


def human_size(n_bytes: int) -> str:
    """Bytes as people read them: 512 -> "512 B", 141_200_000 -> "141.2 MB" (powers of 1000)."""
    if n_bytes < 1000:
        return f"{n_bytes} B"
    size, unit = n_bytes / 1000, "kB"
    for bigger in ("MB", "GB", "TB"):
        if round(size, 1) < 1000:  # 999_950 B is "1.0 MB", not "1000.0 kB"
            break
        size, unit = size / 1000, bigger
    return f"{size:.1f} {unit}"


# --------------------------------------------------------------------------------------------
# The kinds of entry
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CacheKind:
    """One kind of cache entry.

    Attributes:
        folder: its sub-folder of the ganforge home.
        title: how ``cache list`` names the kind.
        data_suffix: the suffix of an entry's data file (beside its ``.json``).
        describe: what data an entry is of, from its JSON metadata (one line).
    """

    folder: str
    title: str
    data_suffix: str
    describe: Callable[[dict[str, Any]], str]


def _describe_decoded(meta: dict[str, Any]) -> str:
    if "data" not in meta:  # written before entries named their data folder: never read again
        return "images of a data folder (an older ganforge's entry; no longer read)"
    return f"{meta.get('what', 'images')} of {meta['data']}"


def _describe_refstats(meta: dict[str, Any]) -> str:
    key = meta.get("key")
    extractor = key.get("extractor", "?") if isinstance(key, dict) else "?"
    return f"{extractor} features of {meta.get('n_samples', '?')} samples: {meta.get('source', '?')}"


KINDS: Registry[CacheKind] = Registry("cache kind")
KINDS.register("decoded", "decoded images")(
    CacheKind(DECODED_DIR, "decoded images", ".npy", _describe_decoded))
KINDS.register("refstats", "reference statistics")(
    CacheKind(REFSTATS_DIR, "reference statistics", ".safetensors", _describe_refstats))


# --------------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CacheEntry:
    """One entry on disk.

    Attributes:
        kind: its key in :data:`KINDS`.
        of: what data it is of (one line).
        files: every file of the entry (its data file first, then its JSON).
        size: their total size in bytes.
        used: when it was last used or made (the newest modification time of its files; a
            decoded-image entry's data file is touched whenever it is read).
    """

    kind: str
    of: str
    files: tuple[Path, ...]
    size: int
    used: float

    @property
    def path(self) -> Path:
        """The entry's data file (its JSON for an entry whose data file is missing)."""
        return self.files[0]


def _entry(kind: str, files: list[Path], of: str) -> Optional[CacheEntry]:
    present, size, used = [], 0, 0.0
    for path in files:
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile (by a concurrent clear or rebuild)
            continue
        present.append(path)
        size += stat.st_size
        used = max(used, stat.st_mtime)
    return CacheEntry(kind, of, tuple(present), size, used) if present else None


def _read_meta(path: Path) -> Optional[dict[str, Any]]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def kind_entries(name: str, home: Optional[Path] = None) -> list[CacheEntry]:
    """Entries of kind ``name`` under ``home`` (default: the ganforge home), by path."""
    kind = KINDS.get(name)
    folder = (home if home is not None else ganforge_home()) / kind.folder
    if not folder.is_dir():
        return []
    entries, claimed = [], set()
    for meta_path in sorted(folder.rglob("*.json")):
        meta = _read_meta(meta_path)
        data_path = meta_path.with_suffix(kind.data_suffix)
        claimed |= {meta_path, data_path}
        of = kind.describe(meta) if meta is not None else "unreadable metadata"
        entry = _entry(name, [data_path, meta_path], of)
        if entry is not None:
            entries.append(entry)
    # Data files without their JSON, and temporary files of writes that never finished.
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path not in claimed and (
                path.suffix == kind.data_suffix or path.name.endswith(".tmp")):
            entry = _entry(name, [path], "an incomplete entry")
            if entry is not None:
                entries.append(entry)
    return entries


def list_entries(kind: Optional[str] = None, home: Optional[Path] = None) -> list[CacheEntry]:
    """Every entry under the ganforge home, or only those of ``kind``, grouped by kind."""
    names = [kind] if kind is not None else KINDS.names()
    return [entry for name in names for entry in kind_entries(name, home)]


def remove_entries(entries: list[CacheEntry], home: Optional[Path] = None) -> int:
    """Delete the files of ``entries`` and the folders they leave empty; returns bytes freed.

    Raises:
        GanforgeError: a file could not be removed (the first one, after trying all of them).
    """
    home = home if home is not None else ganforge_home()
    freed, failed = 0, []
    for entry in entries:
        for path in entry.files:
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except FileNotFoundError:
                continue
            except OSError as err:
                failed.append(f"'{path}' ({err.strerror or err})")
    # Per-data-folder sub-folders (decoded/<name>-<hash>/) go when empty; the kind folders stay.
    for name in KINDS.names():
        top = home / KINDS.get(name).folder
        if top.is_dir():
            for sub in top.iterdir():
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
    if failed:
        raise GanforgeError(f"could not remove {len(failed)} cache file(s), e.g. {failed[0]}; "
                            "check the permissions of that folder")
    return freed


# --------------------------------------------------------------------------------------------
# ganforge cache list | clear
# --------------------------------------------------------------------------------------------

def entry_line(entry: CacheEntry) -> str:
    """One entry as ``cache list`` prints it: kind, size, last used, what data, path."""
    used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.used))
    return (f"{KINDS.get(entry.kind).title:<20}  {human_size(entry.size):>9}  {used}  "
            f"{entry.of}  {entry.path}")


def total_line(entries: list[CacheEntry], home: Path) -> str:
    """``total: 3 entries, 141.2 MB in <home>``."""
    count = len(entries)
    return (f"total: {count} entr{'y' if count == 1 else 'ies'}, "
            f"{human_size(sum(e.size for e in entries))} in {home}")


def add_cache_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge cache list|clear`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "cache", help="list or clear ganforge's caches (decoded images, reference statistics)",
        description=f"ganforge keeps what it derives from data under ${HOME_ENV} (default: the "
        "platform's cache folder, e.g. ~/.cache/ganforge), never in a data folder. Examples: "
        "ganforge cache list; ganforge cache clear --kind decoded --yes")
    actions = p.add_subparsers(dest="cache_action", required=True)
    kinds = KINDS.names()
    listing = actions.add_parser("list", help="each entry: kind, size, last used, data, path")
    listing.add_argument("--kind", choices=kinds, help="only entries of this kind")
    clear = actions.add_parser("clear", help="remove entries (they are rebuilt when needed)")
    clear.add_argument("--kind", choices=kinds, help="only entries of this kind")
    clear.add_argument("--yes", action="store_true",
                       help="remove them (without it: print what would be removed)")


def cmd_cache(args: argparse.Namespace) -> int:
    """Run ``ganforge cache list`` or ``ganforge cache clear``."""
    home = ganforge_home()
    entries = list_entries(args.kind)
    if not entries:
        what = f"{KINDS.get(args.kind).title} " if args.kind else ""
        print(f"no {what}cache entries in {home}")
        return 0
    for entry in entries:
        print(entry_line(entry))
    print(total_line(entries, home))
    if args.cache_action == "clear":
        if not args.yes:
            print("nothing removed; add --yes to remove the entries above")
            return 0
        freed = remove_entries(entries, home)
        print(f"removed {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
              f"({human_size(freed)}) from {home}")
    return 0


__all__ = ["DECODED_DIR", "KINDS", "REFSTATS_DIR", "CacheEntry", "CacheKind", "add_cache_parser",
           "cmd_cache", "human_size", "kind_entries", "list_entries", "remove_entries"]
