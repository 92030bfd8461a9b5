"""``ganforge bench``: run a benchmark spec, or say what the results store holds.

``ganforge bench SPEC.toml [--only NAME] [--skip-done]`` runs a spec (:mod:`.spec`,
:mod:`.runner`) and appends one record per finished run to the store, so that anyone can rerun a
published table on their own machine. ``ganforge bench status`` lists, for each benchmark and
subject, the number of current records, then every stale record — one that measured an earlier
form of its preset — with the command that refreshes it. A spec or store that fails its checks
is refused in one line.
"""

from __future__ import annotations

import argparse
import shlex
from collections import Counter
from pathlib import Path

from ganforge.bench.store import Store

DEFAULT_STORE = Path("benchmarks") / "results" / "records.jsonl"
EXAMPLE = ("ganforge bench benchmarks/specs/quality.toml --data-root DATA --only cgan-mnist "
           "--skip-done")


def add_bench_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge bench`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "bench", help="run a benchmark spec into the results store, or list what it holds",
        description="Run a benchmark spec (TOML: runs x seeds x budget, scored at given "
        "minutes, one record per run in the results store), or `status`: the store's current "
        f"and stale records. Example: {EXAMPLE}")
    p.add_argument("spec", metavar="SPEC|status", help="a spec file (benchmarks/specs/*.toml), "
                   "or `status`")
    p.add_argument("--store", default=str(DEFAULT_STORE),
                   help=f"the results store (default {DEFAULT_STORE})")
    p.add_argument("--only", action="append", metavar="NAME", help="only this run of the "
                   "spec (repeat for more)")
    p.add_argument("--skip-done", action="store_true", help="skip runs whose current record "
                   "the store holds (same run, seed, budget, scoring and kind of CPU)")
    p.add_argument("--data-root", help="fills {data_root} in the spec (the folder holding the "
                   "datasets)")
    p.add_argument("--runs", default=str(Path("runs") / "bench"), help="where run folders "
                   "and reference files go (default runs/bench)")
    p.add_argument("--dry-run", action="store_true", help="list the runs to do, train nothing")
    p.add_argument("--bench", help="status: only this benchmark (e.g. quality)")


def cmd_bench(args: argparse.Namespace) -> int:
    store = Store(args.store)
    if args.spec == "status":
        return status(store, args.bench)
    from ganforge.bench.runner import run_spec
    from ganforge.bench.spec import load_spec

    spec = load_spec(args.spec, args.data_root)
    # The command that reproduces a record: the data root is this machine's, so it is named
    # DATA (a record never holds a machine path).
    command = shlex.join(["ganforge", "bench", args.spec,
                          *(["--data-root", "DATA"] if args.data_root else []),
                          *(a for name in args.only or [] for a in ("--only", name))])
    run_spec(spec, store, Path(args.runs), command, args.only, args.skip_done, args.dry_run)
    return 0


def status(store: Store, bench: str | None) -> int:
    """Print what ``store`` holds (of ``bench`` alone when given)."""
    if not store.path.is_file():
        print(f"no results store at '{store.path}'; pass --store FILE")
        return 0
    cache: dict = {}
    records = [r for r in store.records() if bench is None or r.bench == bench]
    flags = [store.is_stale(r, cache) for r in records]
    stale = [r for r, old in zip(records, flags) if old]
    current = Counter((r.bench, r.name) for r, old in zip(records, flags) if not old)
    print(f"{store.path}: {len(records)} records, {len(records) - len(stale)} current, "
          f"{len(stale)} stale")
    for (name_bench, name), count in sorted(current.items()):
        print(f"  {name_bench:12s} {name:32s} {count} current")
    if stale:
        print("stale (an earlier form of the preset; refresh with the command shown):")
        for r in stale:
            print(f"  {r.bench:12s} {r.name:32s} {r.date}  {r.command}")
    return 0
