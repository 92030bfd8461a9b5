"""Numbers rendered from the results store into hand-written pages.

A hand-written page (``README.md``, ``REPRODUCTIONS.md``, a reference, results or tutorial page)
shows a measured number only inside a block that ``docs/generate.py`` writes::

    <!-- rendered from records: KEY -->
    what the renderer KEY returns
    <!-- end rendered -->

Every number a block shows carries what it stands on (:func:`basis`): the protocol it was
measured under, the date, and the standing of its records — current, **stale** (measured on an
earlier form of its preset, or with settings that were never recorded: history, never the
preset's current number) or **transcribed** (copied by hand from a log or a comment, with no raw
measurement behind it). ``tests/test_docs.py`` fails while a block differs from what the store
renders; ``tests/test_docs_numbers.py`` fails while a number stands outside such a block, a
marked history region or a citation of a seed document (``docs/guard.py``).

The renderers of this module: each reproduced document's measurements and status
(``reproductions.py``'s :data:`DOCUMENTS`), the table of all of them, the quick start's two
transcribed runs and the GPU throughput rows that were transcribed. ``generate.py`` adds the
README's quality table (it shares the quality page's summary).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

from ganforge.bench import Record, Store

OPEN = "<!-- rendered from records: {key} (docs/generate.py writes this block; do not edit) -->"
CLOSE = "<!-- end rendered -->"
BLOCK = re.compile(r"<!-- rendered from records: (?P<key>[\w:.-]+)(?: \([^)]*\))? -->\n"
                   r"(?P<body>.*?)" + re.escape(CLOSE), re.S)
UNKNOWN = "unknown"  # a date or machine the migrated file never recorded
UNRECORDED = "unrecorded"  # a preset's run whose settings were never recorded: always stale


def fill(text: str, render: Callable[[str], str], where: str = "the page") -> str:
    """``text`` with the body of each rendered block written again by ``render(key)``."""
    def again(match: re.Match) -> str:
        return block(match.group("key"), render(match.group("key")))

    if not BLOCK.search(text):
        raise SystemExit(f"{where} has no {OPEN.format(key='KEY')} ... {CLOSE} block")
    return BLOCK.sub(again, text)


def block(key: str, body: str) -> str:
    """One rendered block as a page holds it: markers on their own lines, blank lines around
    the body so that a table or a list inside it parses as one."""
    return f"{OPEN.format(key=key)}\n\n{body.strip()}\n\n{CLOSE}"


class Evidence:
    """The records of the store, their standing, and the preset quality rows ``generate.py``
    summarises for the README (``quality(preset)``: its current row, or None)."""

    def __init__(self, store: Store, quality: Callable[[str], Optional[dict]]) -> None:
        self.store, self.quality = store, quality
        self.records = store.records()
        self._fingerprints: dict = {}

    def stale(self, record: Record) -> bool:
        return self.store.is_stale(record, self._fingerprints)

    def find(self, bench: str, name: Optional[str] = None, source: Optional[str] = None,
             origin: Optional[str] = None) -> list[Record]:
        """The records of ``bench`` (named ``name``, copied from a file ending in ``source``,
        of ``origin``), in the order written.

        Raises:
            LookupError: none; a page must not lose a number silently when the store changes.
        """
        found = [r for r in self.records if r.bench == bench
                 and (name is None or r.name == name)
                 and (source is None or any(f.endswith(source) for f in files(r)))
                 and (origin is None or r.origin == origin)]
        if not found:
            raise LookupError(f"the results store has no record of bench {bench!r}"
                              + (f", name {name!r}" if name else "")
                              + (f", source {source!r}" if source else ""))
        return found


def files(record: Record) -> list[str]:
    """The files a record was copied from: its ``source`` is ``path#where``, or several joined
    by " and "."""
    return [piece.split("#")[0] for piece in (record.source or "").split(" and ") if piece]


# ----------------------------------------------------------------------------- basis

def when(records: Iterable[Record]) -> str:
    """The day, or the first and last day, the records were made."""
    days = sorted({r.date[:10] for r in records if r.date and r.date != UNKNOWN})
    if not days:
        return "date not recorded"
    return days[0] if len(days) == 1 else f"{days[0]} – {days[-1]}"


def standing(ev: Evidence, records: Sequence[Record]) -> str:
    """Current, stale (with why) or transcribed (from where): the records' word on themselves."""
    words = []
    copied = sorted({f for r in records if r.origin == "transcribed" for f in files(r)})
    if copied:
        words.append("**transcribed** by hand from " + ", ".join(f"`{f}`" for f in copied))
    stale = [r for r in records if ev.stale(r)]
    if stale:
        names = sorted({r.settings_of["preset"] for r in stale})
        presets = ", ".join(f"`{p}`" for p in names)
        if all(r.settings_sha == UNRECORDED for r in stale):
            words.append(f"**stale**: {presets} as {'it was' if len(names) == 1 else 'they were'}"
                         f" then ({'its' if len(names) == 1 else 'their'} settings were not "
                         "recorded)")
        else:
            words.append(f"**stale**: an earlier form of {presets}")
    return "; ".join(words) or "current"


def basis(ev: Evidence, records: Sequence[Record], protocol: str) -> str:
    """``(protocol; date; standing)`` in italics, after the number it qualifies."""
    return f"_({protocol}; {when(records)}; {standing(ev, records)})_"


# ----------------------------------------------------------------------------- formatting

def num(x: float, digits: int) -> str:
    """``x`` with ``digits`` decimals, a true minus sign for a negative number."""
    return f"{x:,.{digits}f}".replace("-", "−")


def mean_sd(values: Sequence[float], digits: int) -> str:
    """Mean ± standard deviation over seeds (the deviation of one value is 0)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{num(statistics.fmean(values), digits)} ± {sd:.{digits}f}"


def span(values: Sequence[float], digits: int, unit: str = "") -> str:
    """``lo–hi`` (or the one value) with ``unit`` after it."""
    lo, hi = num(min(values), digits), num(max(values), digits)
    return f"{lo}{unit}" if lo == hi else f"{lo}–{hi}{unit}"


def seeds(records: Sequence[Record]) -> str:
    """"seed 0" or "seeds 0, 1, 2" (the runs' random seeds, not seed documents); "" when the
    records name none (a measurement of real data)."""
    found = sorted({r.protocol.get("seed") for r in records if r.protocol.get("seed") is not None})
    if not found:
        return ""
    return ("seed " if len(found) == 1 else "seeds ") + ", ".join(map(str, found))


def listed(*parts: str) -> str:
    """The non-empty ``parts``, joined by commas."""
    return ", ".join(p for p in parts if p)


def machine(records: Sequence[Record]) -> str:
    """The GPU, else the CPU, the records ran on ("an unrecorded CPU" when unknown)."""
    r = records[0]
    if r.machine.get("gpu"):
        return f"one {r.machine['gpu']}"
    cpu = r.machine.get("cpu") or UNKNOWN
    if cpu == UNKNOWN:
        return "a CPU not recorded"
    name = " ".join(re.sub(r"\(\w+\)|\bProcessor\b", " ", cpu).split())
    cores = r.machine.get("cores")
    return f"a {cores}-core {name}" if isinstance(cores, int) else f"an {name}"


# ----------------------------------------------------------------------------- blocks

def quick_start(ev: Evidence) -> str:
    """The quick start's two runs (first-run tutorial), transcribed: an admonition."""
    runs = sorted(ev.find("quick-start", "cgan-digits"), key=lambda r: r.protocol["seed"])
    p = runs[0].protocol
    minutes, rest = divmod(int(runs[0].values["wall_s"]), 60)
    both = " and ".join
    text = (f"On an idle {runs[0].machine['cores']}-core CPU ({p['minutes']:g} minutes of "
            f"training, {minutes} min {rest} s in all) {len(runs)} runs ({seeds(runs)}) gave "
            f"label accuracy {both(num(r.values['acc'], 3) for r in runs)} (worst digit "
            f"{both(num(r.values['worst'], 3) for r in runs)}) and FID "
            f"{both(num(r.values['fid'], 1) for r in runs)} in `{p['evaluator']}`'s feature "
            "space (not an Inception FID) "
            + basis(ev, runs, f"`ganforge train --preset cgan-digits`, {p['minutes']:g} min"))
    note = ("These are transcribed records of bench `quick-start`: typed by hand before the "
            "results store existed, with no raw measurement behind them. "
            "`ganforge bench status --bench quick-start` lists them with the command that "
            "measures them again.")
    return "\n".join(['!!! warning "Transcribed: numbers typed before the results store '
                      'existed"', *_indent(text), "", *_indent(note)])


def _indent(paragraph: str, width: int = 92) -> list[str]:
    """A paragraph wrapped at ``width`` and indented four spaces (an admonition's body)."""
    lines, line = [], ""
    for word in paragraph.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append("    " + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + (["    " + line] if line else [])


def gpu_transcribed(ev: Evidence) -> str:
    """The presets' GPU throughput that exists only as a page's progress lines, and the step
    profile, each marked transcribed."""
    rows = ev.find("throughput", origin="transcribed")
    by: dict[str, dict[str, Record]] = {}
    for r in rows:
        by.setdefault(r.name, {})[r.protocol["variant"]] = r
    out = ["| preset | batch | images/s fp32 | images/s bf16 | peak memory fp32 / bf16 (MiB) |",
           "|---|---|---|---|---|"]
    for name, v in by.items():
        fp32, bf16 = v.get("fp32"), v.get("bf16")
        ips = [num(x.values["images_per_s/median"], 0) if x else "–" for x in (fp32, bf16)]
        mem = " / ".join(num(x.values["peak_mem_mib"], 0) if x else "–" for x in (fp32, bf16))
        batch = (fp32 or bf16).protocol["batch"]
        out.append(f"| `{name}` | {batch} | {ips[0]} | {ips[1]} | {mem} |")
    out += ["", "Each row: " + basis(ev, rows, f"`benchmarks/throughput.py --device cuda` on "
                                     f"{machine(rows)}, median of 5 windows, read from its "
                                     "progress lines")]
    prof = ev.find("profile", origin="transcribed")
    for r in prof:
        v = r.values
        out += ["", f"A step of `{r.name}` at batch {r.protocol['batch']} on {machine([r])}: "
                    f"{num(v['step_ms'], 1)} ms, the GPU busy for "
                    f"{num(v['gpu_busy_ms_per_step'], 1)} ms of it; "
                    f"{num(v['cpu_pct_in_cudaLaunchKernel'], 0)}% of the CPU's time in "
                    f"`cudaLaunchKernel`, {num(v['kernel_launches_per_step'], 0)} kernel "
                    "launches per step "
                    + basis(ev, [r], f"`benchmarks/profile_step.py`, {r.protocol['steps']} "
                                     "steps")]
    return "\n".join(out)


def renderers(evidence: Callable[[], Evidence]) -> dict[str, Callable[[], str]]:
    """Every block this module renders, by key; ``evidence`` is called once per block (it
    may cache)."""
    import reproductions  # docs/reproductions.py: the documents' renderers

    out: dict[str, Callable[[], str]] = {
        "quick-start": lambda: quick_start(evidence()),
        "gpu-transcribed": lambda: gpu_transcribed(evidence()),
        "reproductions": lambda: reproductions.summary(evidence()),
    }
    for doc in reproductions.DOCUMENTS:
        out[f"reproduction:{doc.key}"] = (lambda d=doc: reproductions.details(evidence(), d))
    return out
