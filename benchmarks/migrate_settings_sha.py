"""Carry the quality records' settings fingerprints over to the config's component form.

When components came to declare their own settings, a resolved config stopped holding the keys
of components it does not choose (``loss.clip`` on a ``bce`` run), so ``config.json`` — and the
fingerprint ``quality.py`` takes of its trained settings — changed form while the settings a
preset trains with did not (``tests/test_config_components.py`` checks every preset against the
resolved presets recorded before the change, ``tests/fixtures/presets_resolved.json``).

This rewrites, in ``results/quality_runs.jsonl``, the fingerprint of every preset run that was
current in the old form — its fingerprint equals that of its preset as recorded then — to the
fingerprint of its preset now. Runs of an earlier form of a preset stay stale. Running it again
changes nothing.

    python benchmarks/migrate_settings_sha.py [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402  (benchmarks/quality.py)

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "fixtures" / "presets_resolved.json"
RUNS = quality.RESULTS / "quality_runs.jsonl"


def old_form(preset: str) -> dict:
    """The resolved config of ``preset`` as the old form saved it (every key of every
    section), nested as ``Config.to_dict()`` gave it."""
    snapshot = json.loads(SNAPSHOT.read_text())
    flat = {**snapshot["defaults"], **snapshot["presets"][preset]}
    nested: dict = {}
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        (nested.setdefault(section, {}) if section else nested)[name] = value
    return nested


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would change")
    args = parser.parse_args()
    lines = RUNS.read_text().splitlines()
    changed = 0
    out = []
    for line in lines:
        record = json.loads(line)
        if record["kind"] != "typical" and not record.get("extra_overrides"):
            name = record["name"]
            was = quality.settings_fingerprint(old_form(name))
            now = quality.preset_settings(name, [])
            if record["settings_sha"] == was and was != now:
                record["settings_sha"] = now
                changed += 1
                line = json.dumps(record)
        out.append(line)
    print(f"{changed} of {len(lines)} records carried over to the new form")
    if not args.dry_run and changed:
        RUNS.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
