"""``ganforge bench status``: what a results store holds, and what of it is stale.

For each benchmark and subject, the number of current records; then every stale record — one
that measured an earlier form of its preset — with the command that refreshes it. A store
whose lines fail the schema is refused in one line (the line number and the fix).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from ganforge.bench.store import Store

DEFAULT_STORE = Path("benchmarks") / "results" / "records.jsonl"


def add_bench_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge bench`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "bench", help="benchmark results: what the store holds, what is stale",
        description="Read a results store (JSON Lines, one record per measurement). Example: "
        "ganforge bench status --store benchmarks/results/records.jsonl")
    sub = p.add_subparsers(dest="bench_command", required=True)
    status = sub.add_parser("status", help="current and stale records, and how to refresh "
                            "the stale ones")
    status.add_argument("--store", default=str(DEFAULT_STORE),
                        help=f"the store file (default {DEFAULT_STORE})")
    status.add_argument("--bench", help="only this benchmark (e.g. quality)")


def cmd_bench(args: argparse.Namespace) -> int:
    store = Store(args.store)
    if not store.path.is_file():
        print(f"no results store at '{store.path}'; pass --store FILE")
        return 0
    cache: dict = {}
    records = [r for r in store.records() if args.bench is None or r.bench == args.bench]
    stale = [r for r in records if store.is_stale(r, cache)]
    current = Counter((r.bench, r.name) for r in records if r not in stale)
    print(f"{store.path}: {len(records)} records, {len(records) - len(stale)} current, "
          f"{len(stale)} stale")
    for (bench, name), count in sorted(current.items()):
        print(f"  {bench:12s} {name:32s} {count} current")
    if stale:
        print("stale (an earlier form of the preset; refresh with the command shown):")
        for r in stale:
            print(f"  {r.bench:12s} {r.name:32s} {r.date}  {r.command}")
    return 0
