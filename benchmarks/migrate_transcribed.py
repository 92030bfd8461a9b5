"""Readers of the numbers that exist only as text, for ``migrate_to_store.py``: each record is
``origin = "transcribed"``, its ``source`` the file and line the number was copied from.

* ``results/gpu_check_h200.md``: the extra presets' throughput on an H200 (the command ran into
  its time limit before writing its JSON; the table holds its progress lines) and the step
  profile ``profile_step.py`` printed. The page's other numbers are in
  ``throughput_cuda*.json`` (measured records of their own); its test counts are no benchmark.
* ``results/kmnist_gpu_screen.md``: KMNIST ACGAN settings screened on an H200 at the CPU's step
  count (the results folders stayed on the GPU machine).
* The quick start's two seeds: the comment in ``src/ganforge/configs/cgan-digits.toml`` and,
  for the worst digit and the time, the README's sentence about the same runs. That sentence
  moved to ``docs/tutorials/first-run.md`` when the README became a landing page; the records
  keep their source (``README.md#L23``, the README before that move), and this reader, finding
  the sentence no longer in the README, yields nothing more for it. The preset's comment was
  trimmed to its reason and a link since (numbers are rendered from the store, not kept in
  comments); the tutorial renders the two records, marked transcribed.

A page that no longer has the expected line yields nothing for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Optional

import migrate_formats as mf  # benchmarks/migrate_formats.py
from ganforge.bench import Record

GPU_ROW = re.compile(r"\| ([\w-]+) \| (\d+) \| ([\d,]+) \| ([\d,]+) \| (\d+) / (\d+) \|$")
PROFILE = re.compile(
    r"([\d.]+) ms per step \(([\d,]+) images/s\) at batch (\d+); over (\d+) steps the GPU was "
    r"busy ([\d.]+) ms \(([\d.]+) ms per step\) and the CPU spent ([\d.]+) ms, (\d+) % of it in "
    r"`cudaLaunchKernel` \(([\d,]+) launches, (\d+) per step\)")
SCREEN_ROW = re.compile(r"\| (g32\w*) \| (.+?) \| ([\d.]+) \(([\d.]+)\) \| ([\d.]+) \| "
                        r"([\d.]+) \(([\d.]+)×\) \|$")


def _text(repo: Path, name: str) -> tuple[Optional[str], str]:
    path = repo / name
    return (path.read_text() if path.is_file() else None), Path(name).as_posix()


def _line(text: str, piece: str) -> int:
    """The number of the line where ``piece`` starts."""
    return text[:text.index(piece)].count("\n") + 1


def _flat(text: str) -> str:
    """Wrapped prose or a continued command on one line."""
    return " ".join(text.replace("\\\n", " ").split())


def _num(text: str) -> int | float:
    """A number as the page writes it: ``"10,543"`` -> 10543, ``"197"`` -> 197, ``"8.49"``."""
    text = text.replace(",", "")
    return float(text) if "." in text else int(text)


def _search(pattern: str, text: str) -> Optional[re.Match]:
    return re.search(pattern, text, re.S | re.M)


def gpu_check(repo: Path) -> Iterator[Record]:
    """The H200 page's extra presets (fp32 and bf16 each) and its step profile."""
    text, where = _text(repo, f"{mf.RESULTS.as_posix()}/gpu_check_h200.md")
    if text is None:
        return
    date = _search(r"^# .*\((\d{4}-\d{2}-\d{2})\)", text)
    host = _search(r"Machine: one (NVIDIA [^(]+?) \(.*?\), ([^,]+), (\d+) logical cores;\s*"
                   r"torch (\S+)", text)
    machine = {"cpu": host.group(2) if host else mf.UNKNOWN,
               "cores": _num(host.group(3)) if host else mf.UNKNOWN, "threads": mf.UNKNOWN,
               "load_before": None, "load_after": None,
               "gpu": host.group(1) if host else mf.UNKNOWN,
               **({"torch": host.group(4).rstrip(",")} if host else {})}
    day = date.group(1) if date else None
    command = _search(r"\(`(python benchmarks/throughput\.py[^`]*)`\)", text)
    for number, line in enumerate(text.splitlines(), start=1):
        row = GPU_ROW.match(line)
        if not row:
            continue
        preset, batch = row.group(1), _num(row.group(2))
        for variant, ips, mem in (("fp32", row.group(3), row.group(5)),
                                  ("bf16", row.group(4), row.group(6))):
            yield mf.make("throughput", preset,
                          {"images_per_s/median": _num(ips), "peak_mem_mib": _num(mem)},
                          {"batch": batch, "variant": variant, "device": "cuda",
                           "peak_mem_kind": "cuda max allocated",
                           "read_from": "the command's progress lines (median of 5 windows)"},
                          machine, _flat(command.group(1)) if command else None, day,
                          f"{where}#L{number}",
                          mf.unrecorded(preset, [f"train.batch_size={batch}"]),
                          origin="transcribed")
    head = _search(r"^## 3\. Profile — `(python benchmarks/profile_step\.py[^`]*)`", text)
    found = PROFILE.search(_flat(text))
    if head and found:
        argv = mf.flags(head.group(1))
        values = {"step_ms": _num(found.group(1)), "images_per_s": _num(found.group(2)),
                  "gpu_busy_ms": _num(found.group(5)),
                  "gpu_busy_ms_per_step": _num(found.group(6)),
                  "cpu_ms": _num(found.group(7)),
                  "cpu_pct_in_cudaLaunchKernel": _num(found.group(8)),
                  "kernel_launches": _num(found.group(9)),
                  "kernel_launches_per_step": _num(found.group(10))}
        preset = argv.get("preset", [mf.UNKNOWN])[0]
        yield mf.make("profile", preset, values,
                      {"batch": _num(found.group(3)), "steps": _num(found.group(4)),
                       "device": "cuda"}, machine, head.group(1), day,
                      f"{where}#L{_line(text, found.group(1) + ' ms per step')}",
                      mf.unrecorded(preset, argv.get("set", [])), origin="transcribed")


def kmnist_gpu_screen(repo: Path) -> Iterator[Record]:
    """The eight ACGAN settings screened on an H200 (each sets ``model.g_width=32``)."""
    text, where = _text(repo, f"{mf.RESULTS.as_posix()}/kmnist_gpu_screen.md")
    if text is None:
        return
    host = _search(r"Machine: one (NVIDIA \w+), (\d+) CPU cores, torch (\S+), ganforge at "
                   r"commit ([0-9a-f]+)", text)
    date = _search(r"^Date: (\d{4}-\d{2}-\d{2})", text)
    template = _search(r"\n\n    (PYTHONPATH=.*?)\n\n", text)
    scoring = _search(r"([\d,]+) samples under `([\w-]+)`, ceiling ([\d.]+), FID floor "
                      r"([\d.]+)", _flat(text))
    machine = {"cpu": mf.UNKNOWN, "cores": _num(host.group(2)) if host else mf.UNKNOWN,
               "threads": mf.UNKNOWN, "load_before": None, "load_after": None,
               "gpu": host.group(1) if host else mf.UNKNOWN,
               **({"torch": host.group(3)} if host else {})}
    code = {"version": mf.UNKNOWN, "commit": host.group(4) if host else mf.UNKNOWN}
    protocol: dict[str, Any] = {"device": "cuda", "screen": True}
    if scoring:
        protocol.update(n_samples=_num(scoring.group(1)), evaluator=scoring.group(2),
                        ceiling=_num(scoring.group(3)), fid_floor=_num(scoring.group(4)))
    command = _flat(template.group(1)) if template else None
    steps = re.search(r"train\.steps=(\d+)", command or "")
    if steps:
        protocol["steps"] = _num(steps.group(1))
    for number, line in enumerate(text.splitlines(), start=1):
        row = SCREEN_ROW.match(line)
        if not row:
            continue
        name = row.group(1)
        quoted = re.match(r"`([^`]+)`", row.group(2))
        extra = quoted.group(1).split(",") if quoted else []
        values = {"acc": _num(row.group(3)), "acc_ratio_to_ceiling": _num(row.group(4)),
                  "worst": _num(row.group(5)), "fid": _num(row.group(6)),
                  "fid_ratio_to_floor": _num(row.group(7))}
        filled = (command.replace("NAME", name).replace(",OVERRIDES", "".join(
            "," + o for o in extra)) if command else None)
        yield mf.make("kmnist", f"acgan-kmnist-tuned:{name}", values, dict(protocol), machine,
                      filled, date.group(1) if date else None, f"{where}#L{number}",
                      mf.unrecorded("acgan-kmnist-tuned", ["model.g_width=32", *extra]), code,
                      origin="transcribed")


def quick_start(repo: Path) -> Iterator[Record]:
    """The quick start's seeds 0 and 1 on an idle 2-core CPU (3 minutes of training)."""
    toml, toml_where = _text(repo, "src/ganforge/configs/cgan-digits.toml")
    readme, readme_where = _text(repo, "README.md")
    if toml is None or readme is None:
        return
    said = _search(r"label accuracy ([\d.]+) / ([\d.]+) and FID ([\d.]+) / ([\d.]+) for seeds "
                   r"(\d+) / (\d+) on an idle (\d+)-core CPU", _flat(toml.replace("#", "")))
    more = _search(r"\((\d+) minutes of training, (\d+) min (\d+) s in all\) two seeds gave "
                   r"label accuracy ([\d.]+) and ([\d.]+) \(worst digit ([\d.]+) and ([\d.]+)\) "
                   r"and FID ([\d.]+) and ([\d.]+)", _flat(readme))
    if not said or not more:
        return
    source = (f"{toml_where}#L{_line(toml, 'label accuracy')} and "
              f"{readme_where}#L{_line(readme, 'min ' + more.group(3) + ' s in all')}")
    for i in (0, 1):
        seed = _num(said.group(5 + i))
        values = {"acc": _num(said.group(1 + i)), "worst": _num(more.group(6 + i)),
                  "fid": _num(said.group(3 + i)),
                  "wall_s": _num(more.group(2)) * 60 + _num(more.group(3))}
        protocol = {"seed": seed, "minutes": _num(more.group(1)), "evaluator": "digits-lenet",
                    "metrics": ["label-acc", "fid"]}
        machine = {"cpu": mf.UNKNOWN, "cores": _num(said.group(7)), "threads": mf.UNKNOWN,
                   "load_before": None, "load_after": None, "gpu": None}
        command = "ganforge train --preset cgan-digits" + (f" --set train.seed={seed}"
                                                           if seed else "")
        yield mf.make("quick-start", "cgan-digits", values, protocol, machine, command, None,
                      source, mf.unrecorded("cgan-digits"), origin="transcribed")
