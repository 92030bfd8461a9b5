"""The documentation site: its generated pages say what the code says, and it builds in strict
mode (a broken link or a missing reference fails)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import REPO


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", REPO / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_generated_pages_are_current(capsys):
    generate = _generator()
    assert generate.main(["--check"]) == 0, capsys.readouterr().out
    cli = (REPO / "docs" / "reference" / "cli.md").read_text()
    for command in ("train", "generate", "evaluate", "export", "report", "compare", "list",
                    "cache", "bench"):
        assert f"## `ganforge {command}`" in cli
    presets = (REPO / "docs" / "reference" / "presets.md").read_text()
    assert "## `wgan-gp-mnist`" in presets and "Dataset `mnist`, model `dcgan`, loss `wgan-gp`." \
        in presets
    # Results rendered from the store: the quality page and the README's table.
    quality = (REPO / "docs" / "results" / "quality.md").read_text()
    assert "## On a 2-core AMD EPYC" in quality and "### Time to quality" in quality
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("<!-- rendered from records: readme-quality"):
                   readme.index("<!-- end rendered -->")]
    assert "| `cgan-mnist` |" in table and "`quality-v2`" in table


def test_reproductions_are_rendered_from_the_store():
    """REPRODUCTIONS.md and the Reproductions page hold the table of what each document's
    reproduction measured, and the page one section per document, each number with its basis
    (``--check`` above says they are current); stale records say so."""
    generate = _generator()
    page = (REPO / "docs" / "reference" / "reproductions.md").read_text()
    short = (REPO / "REPRODUCTIONS.md").read_text()
    for text in (page, short):
        assert "<!-- rendered from records: reproductions " in text
        assert "| Seed 000: ACGAN on Kuzushiji |" in text
    keys = [k for k in generate.renderers() if k.startswith("reproduction:")]
    assert keys and all(f"<!-- rendered from records: {k} " in page for k in keys)
    # every document a preset reproduces has its section, rendered
    from ganforge.config import list_presets, resolve

    documents = generate._docs_module("reproductions").DOCUMENTS
    assert {d.cites for d in documents} == {resolve(n).reproduces for n in list_presets()} - {""}
    seed_001 = generate.render_block("reproduction:seed-001")
    # the preset's current number, and its earlier form's marked stale, never as current
    assert "; current)_" in seed_001.splitlines()[0]
    earlier = next(line for line in seed_001.splitlines() if "before that retuning" in line)
    assert "**stale**" in earlier
    status = generate.render_block("reproduction:seed-000").split("**Status**")[1]
    assert "every class ≥" in status and ("missed by" in status or "met by every" in status)
    assert "**transcribed**" in generate.render_block("quick-start")


def test_readme_is_a_landing_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    # The quick start, and the test command .ci/run relies on.
    assert "make demo   #" in readme and "make test   #" in readme and "## Tests" in readme


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", ["README.md", "REPRODUCTIONS.md", "ARCHITECTURE.md",
                                  "benchmarks/README.md", "examples/plugin/README.md"])
def test_relative_links_outside_the_site_resolve(page):
    """The strict build checks the links of docs/; these pages are read on GitHub."""
    path = REPO / page
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (path.parent / target.split("#")[0]).exists(), f"{page}: {target}"


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed; pip install 'ganforge[docs]' (the test extra "
                    "has it)")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-d", str(tmp_path / "site")], cwd=REPO, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "settings" / "index.html").is_file()
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    # The API page is the docstrings themselves (mkdocstrings).
    assert "Train a model and return the loaded run" in api
    assert "What a plugin may import" in api


# ---------------------------------------------------------------------------------------------
# Every shell command of the tutorials runs
# ---------------------------------------------------------------------------------------------

TUTORIALS = REPO / "docs" / "tutorials"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
# Commands a test cannot run, by how they start, and why. Each must still occur in a tutorial.
SKIPPED = {
    "make install": "sets up .venv; the test runs in the environment it was started from",
    "source .venv/bin/activate": "puts .venv on the PATH; the test calls ganforge in-process",
    "tensorboard --logdir": "serves a page until stopped (tests/reporting/test_closing.py reads "
                            "the same logs with tensorboard --inspect)",
    "torchrun --nnodes 2": "needs two machines that reach each other",
}
BUDGET_FLAGS = ("--time-budget", "--steps", "--epochs")
TINY_MODEL = {"mlp": ["model.g_hidden=[16]", "model.d_hidden=[16]"],
              "dcgan": ["model.g_width=8", "model.d_width=8"]}
TINY_RUN = ["train.batch_size=8", "log.log_every=1", "log.sample_every=1",
            "log.checkpoint_every=1", "log.report_every_s=none", "eval.final_samples=100"]
MNIST_SUBSET = ["data.split=test", "data.download=false", "data.limit=64"]
# A tune command's every run: a small batch, no report rebuilds (tune sets the budget and the
# scoring itself, so TINY_RUN's eval and log keys are not for it).
TINY_TUNE_RUN = ["train.batch_size=8", "log.report_every_s=none", "train.device=cpu"]
# A tune command's study, at these values: two trials of one seed, one seed to verify with.
TINY_STUDY = {"--trials": "2", "--seeds": "1", "--verify": "1"}


def tutorial_commands(page: Path) -> list[str]:
    """The commands of a page's ```bash blocks, in order: continued lines joined, blank and
    comment-only lines dropped (a trailing ``# ...`` stays; shlex drops it)."""
    commands = []
    for block in BASH_BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                commands.append(" ".join(line.split()))
    return commands


def _take(argv: list[str], flag: str) -> tuple[list[str], str | None]:
    """``argv`` without ``flag VALUE``, and the value (None when absent)."""
    if flag not in argv:
        return argv, None
    i = argv.index(flag)
    return argv[:i] + argv[i + 2:], argv[i + 1]


def _values(argv: list[str], flag: str) -> list[str]:
    """The values of every ``flag VALUE`` in ``argv`` (``--set``, ``--param``)."""
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def _sets(overrides: list[str]) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def shrink_tune(argv: list[str]) -> list[str]:
    """``ganforge tune`` arguments (after ``tune``) shrunk: see
    :func:`test_every_tutorial_command_runs`."""
    from ganforge.config import resolve

    for flag in ("--minutes-per-trial", "--steps-per-trial", "--samples"):
        argv, _ = _take(argv, flag)
    grid = "grid" in _values(argv, "--sampler")
    for flag, value in TINY_STUDY.items():
        argv, given = _take(argv, flag)
        if given is not None or (flag == "--trials" and not grid):
            argv += [flag, value]
    searched = {spec.partition("=")[0] for spec in _values(argv, "--param")}
    arch = resolve(_take(argv, "--preset")[1], overrides=_values(argv, "--set")).model.arch
    tiny = [o for o in TINY_MODEL.get(arch, []) if o.partition("=")[0] not in searched]
    return [*argv, "--steps-per-trial", "4", "--samples", "64", *_sets(tiny + TINY_TUNE_RUN)]


def shrink(argv: list[str], mnist: Callable[[], Path]) -> list[str]:
    """A ganforge command line (after ``ganforge``) rewritten to run in seconds; see
    :func:`test_every_tutorial_command_runs` for the rules."""
    from ganforge.config import resolve

    command, argv = argv[0], list(argv[1:])
    if "--data-root" in argv:
        argv, root = _take(argv, "--data-root")
        local = root is not None and Path(root).exists()  # prepared by the test
        argv += ["--data-root", root if local else str(mnist())]
        if command == "train" and not local:
            argv += [x for o in MNIST_SUBSET for x in ("--set", o)]
    if command == "train":
        for flag in BUDGET_FLAGS:
            argv, _ = _take(argv, flag)
        if "--resume" in argv:
            return [command, *argv, "--steps", "4", "--no-progress"]
        argv, preset = _take(argv, "--preset")
        config = _values(argv, "--config") or _values(argv, "-c") or [None]
        arch = resolve(preset, config_file=config[0], overrides=_values(argv, "--set")).model.arch
        extra = TINY_MODEL.get(arch, []) + TINY_RUN
        if "--device" not in argv:
            argv += ["--device", "cpu"]
        return [command, *(["--preset", preset] if preset else []), *argv, "--steps", "2",
                "--no-progress", *_sets(extra)]
    if command == "evaluate":
        if "--evaluator" in argv and argv[argv.index("--evaluator") + 1] == "inception":
            argv[argv.index("--evaluator") + 1] = "digits-lenet"
        if (Path(argv[0]) / "config.json").is_file() and "--n" not in argv:
            argv += ["--n", "100"]
    if command == "train-evaluator":
        argv += ["--epochs", "1", "--limit", "256"]
    if command == "tune":
        return [command, *shrink_tune(argv)]
    return [command, *argv]


def prepare(page: str, folder: Path) -> None:
    """What a tutorial assumes is on disk before its first command, made small."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    if page in ("image-folder.md", "tune-your-data.md"):  # pets/cats, pets/dogs
        for name in ("cats", "dogs"):
            (folder / "pets" / name).mkdir(parents=True)
            for i in range(12):
                Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                    folder / "pets" / name / f"{i:04d}.jpg")
    if page == "arrays.md":  # what the page's Python writes, at 1/10 of its size
        x = rng.random((100, 28, 28), dtype=np.float32)
        y = rng.standard_normal((100, 2)).astype(np.float32)
        np.savez(folder / "mine.npz", x=x, y=y, x_test=x[:20], y_test=y[:20])
        np.save(folder / "rows.npy", y[:16])
        np.save(folder / "row.npy", y[0])
        np.savez(folder / "points.npz", x=rng.normal(10.0, 3.0, (200, 8)).astype(np.float32))
    if page == "evaluate-elsewhere.md":  # samples and real images, as folders and as npz
        for name in ("my_samples", "real_images"):
            (folder / name).mkdir()
            for i in range(32):
                Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
                    folder / name / f"{i:03d}.png")
        np.savez(folder / "samples.npz", images=rng.integers(0, 256, (64, 28, 28), np.uint8),
                 labels=np.arange(64) % 10)
        np.savez(folder / "real.npz", images=rng.integers(0, 256, (64, 28, 28), np.uint8))


def run_torchrun(argv: list[str], mnist: Callable[[], Path], folder: Path) -> None:
    """``torchrun ... -m ganforge ARGS`` with two CPU processes (gloo) and ARGS shrunk."""
    at = argv.index("-m")
    launcher, args = argv[1:at], shrink(argv[at + 2:], mnist)
    launcher, _ = _take(launcher, "--nproc_per_node")
    if "--standalone" not in launcher:
        launcher.append("--standalone")
    if args[0] == "train" and "--resume" not in args and "--device" not in args:
        args += ["--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", *launcher,
                           "--nproc_per_node", "2", "-m", "ganforge", *args], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(p.name for p in TUTORIALS.glob("*.md")))
def test_every_tutorial_command_runs(page, request, tmp_path, monkeypatch, capsys):
    """Each ``ganforge``, ``python -m ganforge`` and ``torchrun`` command of the tutorial's
    ```bash blocks runs, in order, in one empty folder, after :func:`prepare` has put there the
    small files the page assumes (images, an npz). The commands are shortened, never otherwise
    changed:

    - ``train``: ``--time-budget X``, ``--steps N`` and ``--epochs N`` are removed and
      ``--steps 2`` added (``--steps 4`` for ``--resume``, so two more steps run), with
      ``--no-progress``, ``--device cpu`` and tiny nets (``TINY_MODEL`` for the model family of
      the preset or ``--config`` file) and logging (``TINY_RUN``); a resumed run keeps its own
      settings;
    - ``tune``: each run ``--steps-per-trial 4`` (in place of its budget) scored on
      ``--samples 64``, with tiny nets (``TINY_MODEL``, less the keys it searches) and
      ``TINY_TUNE_RUN``; the study two trials (a grid: as given), one seed, ``--verify 1``
      (``TINY_STUDY``, each given flag replaced);
    - ``--data-root X``: X is kept when the test prepared it, else replaced by the MNIST test
      split of the ``mnist_root`` fixture (64 images for training: ``MNIST_SUBSET``);
    - ``evaluate``: ``--evaluator inception`` becomes ``digits-lenet`` (the Inception weights
      are a download) and a run folder is scored on ``--n 100`` samples;
    - ``train-evaluator``: ``--epochs 1 --limit 256``;
    - ``torchrun``: two processes on the CPU (``--nproc_per_node 2 --standalone``, gloo),
      ``srun`` dropped in front of it; the ganforge command after ``-m ganforge`` as above.

    Commands that cannot run here are in ``SKIPPED`` with the reason; any other command fails
    the test, so a new kind of command is either run or listed.
    """
    from ganforge.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    prepare(page, tmp_path)

    def mnist() -> Path:
        return request.getfixturevalue("mnist_root")

    for command in tutorial_commands(TUTORIALS / page):
        argv = shlex.split(command, comments=True)
        if argv[0] == "srun":
            argv = argv[1:]
        if any(command.startswith(prefix) for prefix in SKIPPED):
            continue
        if argv[0] == "torchrun":
            run_torchrun(argv, mnist, tmp_path)
        elif argv[0] == "ganforge" or argv[:3] == ["python", "-m", "ganforge"]:
            args = shrink(argv[1 if argv[0] == "ganforge" else 3:], mnist)
            code = main(args)
            assert code == 0, f"{command}\n-> ganforge {shlex.join(args)}\n" + \
                capsys.readouterr().err[-3000:]
        else:
            pytest.fail(f"{page}: `{command}` is neither run by this test nor in SKIPPED")


def test_every_skipped_command_is_in_a_tutorial():
    commands = [c for page in TUTORIALS.glob("*.md") for c in tutorial_commands(page)]
    assert commands and all(any(c.startswith(prefix) for c in commands) for prefix in SKIPPED)
