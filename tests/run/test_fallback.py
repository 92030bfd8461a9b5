"""A truncated newest checkpoint (a full disk, a kill during a copy): every command that loads
the run says on stderr that it falls back and to which step, uses the older checkpoint, and
training moves the bad one to ``checkpoints/corrupt/`` while rotation keeps the good one.
Scores in ``metrics.json`` say which generator they measured."""

from __future__ import annotations

import json

import pytest

from ganforge import api
from ganforge.cli import main
from ganforge.reporting.report import evaluations_section
from ganforge.run import checkpoint as ckpt
from ganforge.run.folder import RunFolder
from tests.conftest import fast_overrides


@pytest.fixture
def damaged(tmp_path):
    """A 6-step cgan-digits run with checkpoints at steps 4 and 6, step 6 cut to half."""
    run = tmp_path / "run"
    sets = fast_overrides(steps=6) + ["log.checkpoint_every=2", "log.keep_checkpoints=2",
                                      "model.g_hidden=[16]", "model.d_hidden=[16]",
                                      "log.trackers=[]"]
    assert main(["train", "--preset", "cgan-digits", "--out", str(run)]
                + [a for o in sets for a in ("--set", o)]) == 0
    newest = run / "checkpoints" / "step_000000006.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    return run


def _fallback_line(run) -> str:
    return (f"ganforge: warning: checkpoints/step_000000006.json: checkpoint "
            f"'{run / 'checkpoints' / 'step_000000006.safetensors'}' fails its checksum "
            "(truncated or corrupt); using checkpoints/step_000000004.json (step 4) instead")


@pytest.mark.parametrize("argv", [
    ["generate", "{run}", "--n", "4", "--out", "{tmp}/g.png"],
    ["export", "{run}", "--format", "hub", "--out", "{tmp}/hub"],
    ["evaluate", "{run}", "--metrics", "fid", "--n", "50", "--out", "{tmp}/m.json"],
    ["report", "{run}"],
])
def test_every_loading_command_says_it_falls_back(damaged, tmp_path, argv, capsys):
    capsys.readouterr()
    code = main([a.format(run=damaged, tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 0, err
    assert _fallback_line(damaged) in err.splitlines()
    # Reading a run changes nothing in it: the damaged file is the user's to look at.
    assert (damaged / "checkpoints" / "step_000000006.safetensors").is_file()
    assert not (damaged / "checkpoints" / "corrupt").exists()


def test_load_run_says_it_on_stderr(damaged, capsys):
    capsys.readouterr()
    run = api.load_run(damaged)
    assert run.step == 4 and run.checkpoint.name == "step_000000004.json"
    assert capsys.readouterr().err.splitlines() == [_fallback_line(damaged)]


def test_resume_quarantines_the_bad_checkpoint_and_rotation_keeps_the_good(damaged, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(damaged), "--steps", "7"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == (
        f"ganforge: warning: checkpoints/step_000000006.json: checkpoint "
        f"'{damaged / 'checkpoints' / 'step_000000006.safetensors'}' fails its checksum "
        "(truncated or corrupt); moved to checkpoints/corrupt/step_000000006.json; using "
        "checkpoints/step_000000004.json (step 4) instead")
    assert "resumed from step_000000004.json at step 4" in captured.out
    folder = damaged / "checkpoints"
    # Steps 6 (again, whole) and 7 are kept; the corrupt step 6 waits in corrupt/.
    assert [p.name for p in ckpt.list_checkpoints(damaged)] == [
        "step_000000006.json", "step_000000007.json"]
    assert sorted(p.name for p in (folder / "corrupt").iterdir()) == [
        "step_000000006.json", "step_000000006.safetensors"]
    assert all(ckpt.is_complete(p) for p in ckpt.list_checkpoints(damaged))


def test_scores_name_the_generator_they_measured(damaged, tmp_path, capsys):
    """metrics.json records the step and EMA of the scored G; after the run moves on, the
    report shows the old score apart, as an earlier model's."""
    assert main(["evaluate", str(damaged), "--metrics", "fid", "--n", "50"]) == 0
    result = json.loads((damaged / "metrics.json").read_text())["results"][0]
    assert result["model"] == {"step": 4, "ema": True, "checkpoint": "step_000000004"}
    folder = RunFolder.read(damaged)
    section = evaluations_section(folder)
    # The newest checkpoint *file* is step 6 (damaged): the score of step 4 is not current.
    assert section["step"] == 6 and section["current"] == []
    assert [(r["name"], r["model"]) for r in section["earlier"]] == [
        (result["name"], "step 4, EMA G")]
    assert main(["train", "--resume", str(damaged), "--steps", "7"]) == 0
    assert main(["evaluate", str(damaged), "--metrics", "kid", "--n", "50"]) == 0
    section = evaluations_section(RunFolder.read(damaged))
    assert section["step"] == 7
    assert [r["model"] for r in section["current"]] == ["step 7, EMA G"]
    assert [r["model"] for r in section["earlier"]] == ["step 4, EMA G"]
    assert main(["report", str(damaged)]) == 0
    html = (damaged / "report.html").read_text()
    assert "Scores of an earlier model (metrics.json)" in html
    assert "no longer the run's newest (step 7)" in html
