"""Readers of the results files written before the store, one per format, for
``migrate_to_store.py`` (which says what a migrated record holds and why).

Each reader takes the repository root and yields :class:`ganforge.bench.Record` objects, one per
measurement, in the file's order; a file that is not there yields nothing. The helpers split a
file's entry into ``values`` (its numbers and lists of numbers, nested keys joined by ``/``:
``images_per_s/median``) and ``protocol`` (everything else, and the named settings of the
measurement such as ``batch`` or ``seed``), and map a file's machine description onto the
store's (``cpu``, ``cores``, ``threads``, ``load_before``, ``load_after``, ``gpu``).
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any, Iterator, Optional

from ganforge.bench import Record

RESULTS = Path("benchmarks") / "results"
UNKNOWN = "unknown"
UNRECORDED = "unrecorded"  # a run of a preset whose file kept no record of its settings
# Numbers that say how something was measured, not what: they go to the protocol whole.
KEEP = {"batch", "threads", "n_critic", "steps_per_window", "seed", "shape", "input_shape",
        "features_shape", "logits_shape", "grid", "class_loss_png", "png", "bytes", "pixels",
        "minutes", "n_val", "n_test", "n_samples", "reference_n", "sample_seed", "recipe_version",
        "evaluator_recipe", "train_size", "heldout_size", "heldout_rows", "target", "target_s",
        "splits", "n_real", "n_fake", "image_size", "val_fraction", "split_seed", "overrides",
        "scoring", "settings", "subset_size", "run", "early_stop", "steps_budget"}
MACHINE_EXTRA = ("logical_cores", "mem_total_gib", "platform", "python", "torch", "torchvision",
                 "numpy", "mkldnn")
Settings = tuple[Optional[str], Optional[dict[str, Any]]]
FIXED: Settings = (None, None)  # fixed code (a typical loop, an evaluator): never stale


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x: Any) -> Any:
    """JSON has no NaN: a file's NaN (a class the run never drew) is kept as null."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def split(data: dict[str, Any], keep: set[str] = KEEP, skip: tuple[str, ...] = (),
          prefix: str = "", values: Optional[dict] = None, protocol: Optional[dict] = None
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(values, protocol)`` of a file's entry: numbers and lists of numbers are values, keys
    named in ``keep`` and everything else protocol; nested dicts (and lists of dicts, by index)
    are walked with their keys joined by ``/``; keys in ``skip`` are left out."""
    values = {} if values is None else values
    protocol = {} if protocol is None else protocol
    for key, value in data.items():
        path = prefix + str(key)
        if key in skip:
            continue
        if key in keep:
            protocol[path] = value
        elif isinstance(value, dict):
            split(value, keep, skip, path + "/", values, protocol)
        elif _number(value):
            values[path] = _finite(value)
        elif isinstance(value, list) and value and all(_number(v) for v in value):
            values[path] = [_finite(v) for v in value]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                split(item, keep, skip, f"{path}/{i}/", values, protocol)
        else:
            protocol[path] = value
    return values, protocol


def machine_of(info: Optional[dict[str, Any]], load_before: Any = None, load_after: Any = None,
               gpu: Optional[str] = None) -> dict[str, Any]:
    """The store's machine from a file's (``report.machine_info`` or a script's own); what the
    file does not say is ``"unknown"`` (CPU, cores, threads) or None (a load never read)."""
    info = info or {}
    out = {"cpu": info.get("cpu_model") or info.get("cpu") or UNKNOWN,
           "cores": info.get("usable_cores") or info.get("cores") or UNKNOWN,
           "threads": info.get("threads") or UNKNOWN,
           "load_before": load_before if load_before is not None else info.get("loadavg_start"),
           "load_after": load_after if load_after is not None else info.get("loadavg_end"),
           "gpu": gpu}
    out.update({k: info[k] for k in MACHINE_EXTRA if k in info})
    return out


def code_of(info: Optional[dict[str, Any]]) -> dict[str, str]:
    """ganforge's version (no file recorded it) and the commit the file names."""
    return {"version": UNKNOWN, "commit": (info or {}).get("ganforge_commit") or UNKNOWN}


def unrecorded(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> Settings:
    """A run of ``preset`` whose file kept no fingerprint: always stale, never current."""
    return UNRECORDED, {"preset": preset, "overrides": list(overrides)}


def make(bench: str, name: str, values: dict[str, Any], protocol: dict[str, Any],
         machine: dict[str, Any], command: Optional[str], date: Optional[str], source: str,
         settings: Settings = FIXED, code: Optional[dict[str, Any]] = None,
         origin: str = "measured") -> Record:
    """One migrated record (an unknown command or date is said as ``"unknown"``)."""
    sha, of = settings
    return Record(bench, name, values, protocol, machine, command or UNKNOWN, date or UNKNOWN,
                  sha, of, dict(code or code_of(None)), origin, source)


def flags(command: str) -> dict[str, list[str]]:
    """A benchmark command's ``--flag value ...`` (repeated flags gather their values)."""
    out: dict[str, list[str]] = {}
    key = None
    for token in shlex.split(command):
        if token.startswith("--"):
            key = token[2:]
            out.setdefault(key, [])
        elif key is not None:
            out[key].append(token)
    return out


def load(repo: Path, name: str) -> tuple[Optional[Any], str]:
    """A results file's JSON (None when absent) and its name as sources give it."""
    path = repo / RESULTS / name
    where = (RESULTS / name).as_posix()
    return (json.loads(path.read_text()) if path.is_file() else None), where


# ----------------------------------------------------------------------------- CPU speed

def speed(repo: Path) -> Iterator[Record]:
    """``speed.py``'s files (the batch sweep and its re-runs in sub-folders): each preset row
    and each side-by-side comparison with a typical loop. The defaults-vs-baseline table and
    the targets are computed from these rows, so they are not records of their own."""
    for path in sorted((repo / RESULTS).rglob("speed_cpu.json")):
        data, where = load(repo, path.relative_to(repo / RESULTS).as_posix())
        base = {**data["protocol"], "quick": data["quick"]}
        machine, code = machine_of(data["machine"]), code_of(data["machine"])
        for part in ("presets", "comparisons"):
            for i, row in enumerate(data[part]):
                if "error" in row:
                    continue  # a configuration that failed measured nothing
                values, protocol = split(row, skip=("preset",))
                name = row["preset"] if part == "presets" else \
                    f"{row['preset']} vs typical loop ({row['seed']})"
                yield make("speed", name, values, {**base, **protocol}, machine,
                           data["command"], data["date_utc"], f"{where}#{part}[{i}]",
                           unrecorded(row["preset"], [f"train.batch_size={row['batch']}"]),
                           code)


def efficiency(repo: Path) -> Iterator[Record]:
    """``efficiency.py``: the machine's fp32 matmul peak, then FLOPs and images/s per preset."""
    data, where = load(repo, "efficiency_cpu.json")
    if data is None:
        return
    machine, code = machine_of(data["machine"]), code_of(data["machine"])
    values, protocol = split(data["peak"])
    yield make("efficiency", "fp32 matmul peak", values, protocol, machine, data["command"],
               None, f"{where}#peak", FIXED, code)
    for i, row in enumerate(data["rows"]):
        values, protocol = split(row, skip=("preset",))
        yield make("efficiency", row["preset"], values, protocol, machine, data["command"],
                   None, f"{where}#rows[{i}]",
                   unrecorded(row["preset"], [f"train.batch_size={row['batch']}"]), code)


def metrics_speed(repo: Path) -> Iterator[Record]:
    """``metrics_speed.py``: seconds to score 10,000 digits cold and warm. Its date is the
    machine's local time, kept as written."""
    data, where = load(repo, "metrics_speed.json")
    if data is None:
        return
    values, protocol = split({k: v for k, v in data.items() if k not in ("command", "date",
                                                                          "machine")})
    yield make("metrics-speed", " + ".join(data["metrics"]), values, protocol,
               machine_of(data["machine"]), data["command"], data["date"], where)


# ----------------------------------------------------------------------------- conditions

def condition(repo: Path) -> Iterator[Record]:
    """``condition_ring.py`` (each run: the ring cGAN and the same net unconditioned) and
    ``condition_features.py`` (the MLP cGAN conditioned on image features)."""
    data, where = load(repo, "condition_ring.json")
    if data is not None:
        machine = machine_of(data["machine"], load_after=data["loadavg_end"])
        for i, run in enumerate(data["runs"]):
            values, protocol = split(run)
            overrides = [] if run["conditional"] else ["model.conditional=false"]
            name = "cgan-ring-angle" + ("" if run["conditional"] else " (model.conditional=false)")
            yield make("condition", name, values, {**protocol, "steps_budget": data["steps"]},
                       machine, data["command"], None, f"{where}#runs[{i}]",
                       unrecorded("cgan-ring-angle", overrides), code_of(data["machine"]))
    data, where = load(repo, "condition_features.json")
    if data is not None:
        rest = {k: v for k, v in data.items() if k not in ("command", "machine", "loadavg_end")}
        values, protocol = split(rest, skip=("samples_png",))  # a temporary folder's path
        yield make("condition", "cgan-mnist conditioned on image features", values, protocol,
                   machine_of(data["machine"], load_after=data["loadavg_end"]), data["command"],
                   None, where, unrecorded("cgan-mnist"), code_of(data["machine"]))


# ----------------------------------------------------------------------------- evaluators

def evaluators(repo: Path) -> Iterator[Record]:
    """``evaluator_mnist.py`` (MNIST and KMNIST): one record per trained pair of nets (fixed
    code: a recipe), their held-out accuracy clean and under each corruption. The training
    log lines stay in the file."""
    for name in ("evaluator_mnist.json", "evaluator_kmnist.json"):
        data, where = load(repo, name)
        if data is None:
            continue
        machine = machine_of(data["machine"], load_after=data.get("loadavg_end"))
        dataset = data.get("dataset", "mnist")
        for i, run in enumerate(data["runs"]):
            nets = {net["role"]: {k: v for k, v in net.items() if k != "role"}
                    for net in run["nets"]}
            values, protocol = split({**run, "nets": nets}, skip=("log",))
            yield make("evaluator", f"{dataset}-lenet {run['recipe']} seed {run['seed']}",
                       values, {**protocol, "target": data["target"]}, machine,
                       data["command"], data["date"], f"{where}#runs[{i}]", FIXED,
                       code_of(data["machine"]))


def evaluator_reading(repo: Path) -> Iterator[Record]:
    """``evaluator_reading.py``: a person's reading of 300 generated digits and each evaluator
    against it (one record each), and the label-accuracy metric on all 10,000 samples. The
    person's readings (``*_labels.json``) are the benchmark's input and stay files."""
    for stem in ("evaluator_reading", "evaluator_reading_tuned"):
        data, where = load(repo, f"{stem}.json")
        if data is None:
            continue
        machine = machine_of(data["machine"], load_after=data.get("loadavg_end"))
        common = {k: data[k] for k in ("run", "n_samples", "subset_size", "target",
                                       "evaluators_made_by")}
        parts = [("person", "person", data["person"])]
        parts += [(name, f"evaluators.{name}", entry)
                  for name, entry in data["evaluators"].items()]
        parts += [(f"{version} label-acc metric", f"label_acc_metric.{version}", entry)
                  for version, entry in data["label_acc_metric"].items()]
        for name, key, entry in parts:
            values, protocol = split(entry, keep=KEEP | {"protocol", "class_names"})
            yield make("evaluator-reading", name, values, {**common, **protocol}, machine,
                       data["command"], data["date"], f"{where}#{key}", FIXED,
                       code_of(data["machine"]))


# ----------------------------------------------------------------------------- reproductions

def parzen(repo: Path) -> Iterator[Record]:
    """``parzen_mnist.py`` (final checkpoints, and with ``--early-stop`` the checkpoint chosen
    on validation digits): the real digits' row, then each preset's run per seed with its
    validation curve."""
    for name in ("parzen_mnist.json", "parzen_mnist_early.json"):
        data, where = load(repo, name)
        if data is None:
            continue
        machine = machine_of(data["machine"], data["load_start"], data["load_end"])
        common = {"protocol": data["protocol"], "threads": data["threads"],
                  **({"early_stop": data["early_stop"]} if "early_stop" in data else {})}
        values, protocol = split(data["real"])
        yield make("parzen", "real digits", values, {**common, **protocol}, machine,
                   data["command"], data["date"], f"{where}#real", FIXED,
                   code_of(data["machine"]))
        for preset, runs in data["runs"].items():
            for i, run in enumerate(runs):
                values, protocol = split(run)
                yield make("parzen", preset, values, {**common, **protocol}, machine,
                           data["command"], data["date"], f"{where}#runs.{preset}[{i}]",
                           unrecorded(preset, run["overrides"]), code_of(data["machine"]))


def faces(repo: Path) -> Iterator[Record]:
    """``faces.py``: the face evaluator, seed 004's WGAN-GP, the tuned face preset's curve and
    each attribute-conditioned preset. A ``--merge`` run rewrites the file with the parts it
    ran; each part is given the command that ran it (the file's own when its settings name the
    part, else the one earlier command, else unknown) and that command's date and machine."""
    data, where = load(repo, "faces_cpu.json")
    if data is None:
        return
    earlier = data.get("earlier_commands", [])

    def ran_by(part: str, preset: Optional[str] = None) -> dict[str, Any]:
        settings = data["settings"]
        if part in settings["parts"] and (preset is None or
                                          preset in settings["attribute_presets"]):
            return data
        return earlier[0] if len(earlier) == 1 else {}

    parts: list[tuple[str, str, dict[str, Any], Optional[str]]] = [
        ("celeba-lenet (face evaluator)", "evaluator", data["evaluator"], None),
        (data["wgan"]["preset"], "wgan", data["wgan"], data["wgan"]["preset"]),
        (data["tuned"]["preset"], "tuned", data["tuned"], data["tuned"]["preset"])]
    parts += [(row["preset"], f"attributes[{i}]", row, row["preset"])
              for i, row in enumerate(data["attributes"])]
    for name, key, entry, preset in parts:
        by = ran_by(key.split("[")[0], preset if key.startswith("attributes") else None)
        values, protocol = split(entry, skip=("path", "preset", "loadavg_before",
                                              "loadavg_after"))
        machine = machine_of(by.get("machine"), entry.get("loadavg_before"),
                             entry.get("loadavg_after"))
        yield make("faces", name, values, protocol, machine, by.get("command"),
                   by.get("date_utc"), f"{where}#{key}",
                   unrecorded(preset) if preset else FIXED, code_of(by.get("machine")))


# ----------------------------------------------------------------------------- GPU

def throughput(repo: Path) -> Iterator[Record]:
    """``throughput.py`` on a GPU: every job (the toolkit's presets per variant and the bare
    loop of the overhead preset's nets). The overhead table is the ratio of two of these
    rows, so it is not a record of its own."""
    for name in ("throughput_cuda.json", "throughput_cuda_aided.json"):
        data, where = load(repo, name)
        if data is None:
            continue
        base = {**data["protocol"], "quick": data["quick"]}
        machine = machine_of(data["machine"], gpu=data["device_name"])
        for i, row in enumerate(data["results"]):
            if "error" in row:
                continue
            values, protocol = split(row, skip=("preset",))
            yield make("throughput", row["preset"], values, {**base, **protocol}, machine,
                       data["command"], data["date_utc"], f"{where}#results[{i}]",
                       unrecorded(row["preset"], [f"train.batch_size={row['batch']}"]),
                       code_of(data["machine"]))
