"""report.html: sections, decodable inlined images, self-contained, atomic, kept current."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from ganforge import api, cli
from ganforge.errors import GanforgeError
from ganforge.reporting import curves
from ganforge.reporting.report import build_report
from tests.conftest import fast_overrides
from tests.data.conftest import fake_celeba  # noqa: F401  (fixture)
from tests.reporting.conftest import (assert_self_contained, decoded_images, train_on_fake_faces,
                                      tiny_cgan_overrides)

SECTIONS = ("overview", "diagnostics", "samples", "curves", "metrics", "labels",
            "interpolation", "config", "environment")


def test_finished_run_report_has_every_section(cgan_runs):
    run = cgan_runs[0]
    html = (run / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert_self_contained(html)
    images = decoded_images(html)
    # final grid, animation, 4 curve groups, confusion matrix, interpolation strip
    assert len(images) == 8
    animation = [im for im in images if im.format == "WEBP"]
    # The WebP encoder may merge near-identical early frames, so count the page's frame list.
    assert len(animation) == 1 and animation[0].is_animated
    assert "5 of 5 snapshots, steps\n        0–40" in html
    for group in ("losses", "loss-real-fake", "probabilities", "speed"):
        assert f'data-group="{group}"' in html
    assert "classified by evaluator" in html and "synthetic-lenet" in html
    findings = [json.loads(line)["name"] for line in
                (run / "diagnostics.jsonl").read_text().splitlines()]
    assert len(findings) == len(set(findings))  # each diagnostic fires at most once
    for name in findings:
        assert f'data-diagnostic="{name}"' in html
    assert ("No diagnostic fired" in html) == (not findings)
    env = json.loads((run / "environment.json").read_text())
    assert env["device"] == "cpu" and env["torch_threads"] == "1"
    assert f"<td>{env['torch']}</td>" in html


def test_confusion_matrix_counts_every_sample(cgan_runs):
    from ganforge.reporting.generated import confusion_view, find_evaluator, \
        source_from_checkpoint
    from ganforge.run.folder import RunFolder

    run = RunFolder.read(cgan_runs[0])
    source, why = source_from_checkpoint(run)
    assert why is None and source.step == 40 and source.n_classes == 10
    extractor, spec = find_evaluator(run.config)
    view = confusion_view(source, extractor, per_class=7)
    assert view.n == 70 and len(view.per_class) == 10
    # The overall accuracy is the support-weighted mean of the per-class ones (equal support).
    assert view.overall == pytest.approx(sum(acc for _, acc, _ in view.per_class) / 10)


def test_confusion_view_reads_with_the_twin_and_names_the_evaluator(cgan_runs):
    """The report's label accuracy comes with the twin's reading of the same samples and their
    disagreement (counted exactly), and with which evaluator (recipe, checksum) read them."""
    import torch

    from ganforge.metrics.formulas import evaluator_agreement
    from ganforge.reporting.generated import confusion_view, find_evaluator, \
        source_from_checkpoint
    from ganforge.run.folder import RunFolder

    run = RunFolder.read(cgan_runs[0])
    source, _ = source_from_checkpoint(run)
    extractor, _ = find_evaluator(run.config)
    view = confusion_view(source, extractor, per_class=7, seed=3)
    y = torch.arange(10).repeat_interleave(7)
    z = source.noise.z(70, torch.Generator().manual_seed(3), device="cpu")
    from ganforge.imaging import to_uint8

    samples = to_uint8(source.sample(z, y))
    _, logits = extractor.features_and_logits(samples)
    want = evaluator_agreement(logits, extractor.twin_logits(samples), y)
    assert (view.twin_overall, view.disagreement) == (want.twin_accuracy, want.disagreement)
    info = view.evaluator_info
    assert info["recipe"] == 2 and info["twin"] and info["current"] and len(info["sha"]) == 8
    html = build_report(cgan_runs[0]).read_text()
    assert "the two evaluators disagree on" in html
    assert f"read by <code>{info['name']}</code> · recipe v2 · sha {info['sha']}" in html


def test_rebuild_from_folder_is_atomic_and_replaces_the_page(cgan_runs, tmp_path, monkeypatch):
    run = tmp_path / "copy"
    shutil.copytree(cgan_runs[0], run)
    (run / "report.html").write_text("old")
    assert cli.main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "checkpoint step_000000040" in html

    # A failure while rendering leaves the previous page and no temporary file behind.
    import ganforge.reporting.report as report_module

    def broken(*args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(report_module, "render", broken)
    with pytest.raises(RuntimeError):
        build_report(run)
    assert (run / "report.html").read_text() == html
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_report_of_a_run_in_progress_needs_no_checkpoint(cgan_runs, tmp_path):
    run = tmp_path / "running"
    shutil.copytree(cgan_runs[0], run)
    for name in ("summary.json", "final_grid.png", "report.html", "diagnostics.jsonl"):
        (run / name).unlink(missing_ok=True)
    shutil.rmtree(run / "checkpoints")
    html = build_report(run).read_text()
    assert "in progress (step 40)" in html
    assert html.count("no checkpoint yet") == 2  # confusion matrix and interpolation
    assert "were replayed" in html  # no diagnostics.jsonl: the stats checks ran on the file
    assert len(decoded_images(html)) == 6  # newest snapshot, animation, 4 curve groups


def test_missing_evaluator_says_how_to_create_one(cgan_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))
    run = tmp_path / "no-eval"
    shutil.copytree(cgan_runs[0], run)
    config = json.loads((run / "config.json").read_text())
    config["eval"]["extractor"] = None
    (run / "config.json").write_text(json.dumps(config))
    html = build_report(run).read_text()
    assert "no evaluator for dataset &#39;synthetic&#39;" in html
    assert "ganforge train-evaluator --dataset synthetic" in html
    # An evaluator file that exists but is damaged is named in the note.
    folder = tmp_path / "home" / "evaluators"
    folder.mkdir(parents=True)
    (folder / "synthetic-lenet.json").write_text("{not json")
    html = build_report(run).read_text()
    assert "synthetic-lenet.json&#39; is not valid JSON" in html


def test_trainer_rebuilds_the_report_at_a_bounded_rate(tmp_path, monkeypatch):
    """Rebuilds come after snapshots once report_every_s has passed, never sooner than 10x the
    last rebuild's cost, and once more at the end (a fake clock makes this exact)."""
    import ganforge.training.watch.report as watch

    clock = {"now": 0.0}
    calls = []

    def fake_build(run_dir, source=None, evaluators=None):
        calls.append(source.step)
        clock["now"] += 3.0  # each rebuild "takes" 3 s, so the next waits at least 30 s
        return run_dir / "report.html"

    monkeypatch.setattr(watch.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(watch, "build_report", fake_build)
    original = watch.RunWatch.snapshot

    def snapshot(self, step, samples, labels):
        clock["now"] += 5.0  # five "seconds" between snapshots
        original(self, step, samples, labels)

    monkeypatch.setattr(watch.RunWatch, "snapshot", snapshot)
    # 2,000 samples: no epoch ends (and no extra snapshot) within the 100 steps.
    overrides = tiny_cgan_overrides(None, steps=100) + ["log.report_every_s=12",
                                                         "data.limit=2000"]
    api.train("cgan-mnist", overrides=overrides, out=str(tmp_path / "r"), log=lambda m: None)
    # Snapshots at steps 0, 10, ..., 100 come at t = 5, 10, ...; the first rebuild is due at
    # t >= 12 (step 20 at t=15, done at 18), the next not before 18 + 10 x 3 = 48 (step 80,
    # done at 51), the next not before 81 (never), then the final one.
    assert calls == [20, 80, 100]


def test_plot_groups_follow_name_patterns():
    names = ["Loss/D", "Loss/G", "Loss/D/real", "Loss/D/fake", "Loss/D/adv", "Loss/G/adv",
             "Loss/G/class", "Loss/D/class_real", "Loss/D/class_fake", "Loss/D/gp",
             "Acc/D/class_real", "Prob/D(x)", "Critic/W-distance", "Critic/real",
             "Speed/images_per_s", "Progress/epoch", "Time/elapsed_s", "Metrics/fid",
             "Grad/G/norm"]
    groups = {g.key: keys for g, keys in curves.group_stats(names)}
    assert groups == {
        "losses": ["Loss/D", "Loss/G"],
        "loss-real-fake": ["Loss/D/fake", "Loss/D/real"],
        "adv-class": ["Loss/D/adv", "Loss/G/adv", "Loss/G/class"],
        "class-real-fake": ["Loss/D/class_fake", "Loss/D/class_real"],
        "loss-other": ["Loss/D/gp"],
        "accuracy": ["Acc/D/class_real"],
        "probabilities": ["Prob/D(x)"],
        "critic": ["Critic/W-distance", "Critic/real"],
        "speed": ["Speed/images_per_s"],
        "other-grad": ["Grad/G/norm"],  # a statistic nobody planned for still gets a plot
    }


def test_best_point_picks_the_first_best_value():
    records = [{"step": 10, "Metrics/fid": 5.0}, {"step": 20, "Metrics/fid": 3.0},
               {"step": 30, "Metrics/fid": float("nan")}, {"step": 40, "Metrics/fid": 3.0}]
    assert curves.best_point(records, "Metrics/fid", higher_is_better=False) == (20, 3.0)
    assert curves.best_point(records, "Metrics/fid", higher_is_better=True) == (10, 5.0)
    assert curves.best_point(records, "Metrics/none", higher_is_better=True) is None


def test_cli_report_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a run folder" in err
    with pytest.raises(GanforgeError):
        build_report(tmp_path / "missing")


def test_attribute_conditioned_run(tmp_path, fake_celeba):  # noqa: F811
    """The trainer's report draws the strip with attribute rows of the data; a rebuild from
    the checkpoint alone (no data) says why it cannot."""
    train_on_fake_faces(tmp_path, fake_celeba, "cdcgan-celeba64-attributes")
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'alt="latent interpolation strip"' in html
    assert "the confusion matrix needs a class-conditional model" in html
    html = build_report(tmp_path / "r").read_text()
    assert 'alt="latent interpolation strip"' not in html
    assert "conditioned on the data&#39;s attribute rows" in html


@pytest.mark.parametrize("preset,groups", [
    ("gan-toy2d", ["losses", "loss-real-fake", "probabilities", "speed"]),
    ("wgan-gp-mnist", ["losses", "loss-other", "critic", "grad-norm", "speed"]),
])
def test_reports_of_other_kinds_of_run(tmp_path, preset, groups):
    from tests.training.step.test_loop import preset_on_generated_data

    overrides = preset_on_generated_data(preset, steps=3) + ["log.report_every_s=0"]
    api.train(preset, overrides=overrides, out=str(tmp_path / "r"), log=lambda m: None)
    html = (tmp_path / "r" / "report.html").read_text()
    assert re.findall(r'data-group="([^"]+)"', html) == groups
    assert_self_contained(html)
    decoded_images(html)
    if preset == "gan-toy2d":
        assert html.count("drawn for image models only") == 2


def _checkerboard(cell: int) -> np.ndarray:
    """A 40x60 RGB grid stand-in: flat gray for cell 0 (an untrained G's tiles), else black and
    white squares of ``cell`` pixels, so every snapshot is far from every other one."""
    image = np.full((40, 60, 3), 128, np.uint8)
    if cell:
        yy, xx = np.mgrid[:40, :60]
        image[:] = (((yy // cell + xx // cell) % 2) * 255).astype(np.uint8)[..., None]
    return image


def test_animation_opens_and_stands_still_on_the_last_snapshot(tmp_path):
    """A still of the page (a print, a screenshot, animation turned off) shows the animation's
    first frame: it must be the last snapshot, not step 0's gray tiles."""
    from tests.reporting.test_compare import fake_run

    run = fake_run(tmp_path / "run", [], [3.0, 2.0])
    (run / "samples").mkdir()
    snapshots = [_checkerboard(cell) for cell in (0, 4, 8, 12)]
    for step, image in zip((0, 10, 20, 30), snapshots):
        Image.fromarray(image).save(run / "samples" / f"step_{step:09d}.png")
    html = build_report(run).read_text()
    (animation,) = [im for im in decoded_images(html) if im.format == "WEBP"]
    frames, durations = [], []
    for i in range(animation.n_frames):
        animation.seek(i)
        frames.append(np.asarray(animation.convert("RGB"), dtype=np.int16))
        durations.append(animation.info["duration"])

    def error(frame, snapshot):  # lossy WebP: mean absolute difference in 0..255
        return float(np.abs(frame - snapshot).mean())

    nearest = [int(np.argmin([error(f, s) for s in snapshots])) for f in frames]
    assert nearest == [3, 0, 1, 2, 3]  # the last snapshot, then every one in order
    assert error(frames[0], snapshots[3]) < 1.0 < 100.0 < error(frames[0], snapshots[0])
    assert durations == [500, 250, 250, 250, 1500]
    assert "4 of 4 snapshots, steps\n        0–30" in html
    assert "It opens and stands still on step 30" in html
