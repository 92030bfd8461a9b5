"""JSONL and TensorBoard writers: strict JSON, append, torn lines, truncate on resume, events."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import GanforgeError
from ganforge.reporting import JsonlWriter, StatsCollector, TensorBoardWriter, read_jsonl


def _strict_loads(line: str) -> dict:
    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(line, parse_constant=reject)


def test_jsonl_nan_is_written_as_null_and_read_back_as_nan(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    stats = StatsCollector()
    stats.attach(JsonlWriter(path))
    stats.add("Loss/D", float("nan"))
    stats.add("Loss/G", float("inf"))
    stats.add("Prob/D(x)", 0.5)
    stats.flush(10)
    stats.close()
    (line,) = path.read_text().splitlines()
    assert _strict_loads(line) == {"step": 10, "Loss/D": None, "Loss/G": None, "Prob/D(x)": 0.5}
    (record,) = read_jsonl(path)
    assert math.isnan(record["Loss/D"]) and math.isnan(record["Loss/G"])
    assert record["step"] == 10 and record["Prob/D(x)"] == 0.5


def test_jsonl_lines_are_on_disk_before_close_and_appends_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "run" / "stats.jsonl"
    writer = JsonlWriter(path)
    writer.write_scalars(1, {"Loss/D": 1.0})
    # A killed process never calls close(); the line must already be in the file.
    assert [r["step"] for r in read_jsonl(path)] == [1]
    writer.write_scalars(2, {"Loss/D": 2.0})
    writer.close()
    with pytest.raises(ValueError):
        writer.write_scalars(3, {})
    with JsonlWriter(path) as resumed:
        resumed.write_scalars(3, {"Loss/D": 3.0, "Loss/G": 0.5})
    assert read_jsonl(path) == [
        {"step": 1, "Loss/D": 1.0},
        {"step": 2, "Loss/D": 2.0},
        {"step": 3, "Loss/D": 3.0, "Loss/G": 0.5},
    ]


def test_truncate_after_keeps_records_up_to_step(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    with JsonlWriter(path) as writer:
        for step in (100, 200, 300, 400):
            writer.write_scalars(step, {"Loss/D": step / 100})
    assert JsonlWriter.truncate_after(path, 250) == 2
    assert [r["step"] for r in read_jsonl(path)] == [100, 200]
    assert JsonlWriter.truncate_after(path, 200) == 0
    assert JsonlWriter.truncate_after(tmp_path / "absent.jsonl", 5) == 0
    assert not (tmp_path / "absent.jsonl").exists()
    with JsonlWriter(path) as writer:
        writer.write_scalars(300, {"Loss/D": 9.0})
    kept = [(r["step"], r["Loss/D"]) for r in read_jsonl(path)]
    assert kept == [(100, 1.0), (200, 2.0), (300, 9.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.jsonl"]


def test_torn_last_line_is_skipped_and_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 1, "Loss/D": 1.0}\n{"step": 2, "Lo')
    assert read_jsonl(path) == [{"step": 1, "Loss/D": 1.0}]
    with JsonlWriter(path) as writer:
        writer.write_scalars(2, {"Loss/D": 2.0})
    assert path.read_text() == '{"step": 1, "Loss/D": 1.0}\n{"step": 2, "Loss/D": 2.0}\n'


def test_corrupt_middle_line_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(GanforgeError, match="line 2"):
        read_jsonl(path)
    with pytest.raises(GanforgeError, match="no stats file"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_truncate_failure_leaves_original_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stats.jsonl"
    with JsonlWriter(path) as writer:
        writer.write_scalars(1, {"Loss/D": 1.0})
        writer.write_scalars(2, {"Loss/D": 2.0})
    before = path.read_bytes()

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        JsonlWriter.truncate_after(path, 1)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["stats.jsonl"]


def test_tensorboard_scalars_and_images_can_be_read_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = tmp_path / "tb"
    stats = StatsCollector()
    tb = stats.attach(TensorBoardWriter(log_dir))
    for step, (d, g) in enumerate([(1.0, 2.0), (0.5, 2.5)]):
        stats.add("Loss/D", d)
        stats.add("Loss/G", g)
        stats.flush(step * 10, extra={"Progress/epoch": step})
    image = np.zeros((8, 12, 3), dtype=np.uint8)
    image[:, :6] = 255
    tb.write_image("Samples/fixed_z", 10, image)
    stats.close()

    assert any(p.name.startswith("events.out.tfevents") for p in log_dir.iterdir())
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"Loss/D", "Loss/G", "Progress/epoch"} <= set(tags["scalars"])
    assert [(e.step, e.value) for e in acc.Scalars("Loss/D")] == [(0, 1.0), (10, 0.5)]
    assert [(e.step, e.value) for e in acc.Scalars("Loss/G")] == [(0, 2.0), (10, 2.5)]
    (img_event,) = acc.Images("Samples/fixed_z")
    assert (img_event.step, img_event.width, img_event.height) == (10, 12, 8)
