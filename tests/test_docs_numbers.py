"""The guard on the documentation's numbers (``docs/guard.py``): a measured-looking number on a
guarded page (the README, ``REPRODUCTIONS.md``, the Reproductions page, the Results pages) is
rendered from the results store, inside a marked history region that names its records, or
quoted from a reproduced document — and the checker itself catches a typed number."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from ganforge.bench import Record
from tests.conftest import REPO

NOTICE = '!!! warning "History: numbers typed before the results store existed"\n    Old.\n'


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", REPO / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def guard():
    return _module("guard")


def _record(bench: str = "kmnist", source: str = "benchmarks/results/kmnist_acgan.json#runs"
            ) -> Record:
    return Record(bench=bench, name="acgan-kmnist:seed000", values={"acc": 0.5}, protocol={},
                  machine={}, command="python benchmarks/kmnist_acgan.py", date="unknown",
                  source=source)


def _check(guard, text: str, render=None, documents=("seed 003",)) -> list:
    render = render or {"demo": "FID 3.36 _(5 min; 2026-11-30; current)_"}.__getitem__
    return guard.check_text(text, "page.md", [_record()], render, documents)


def test_a_number_typed_in_prose_fails_with_its_line(guard):
    text = "# Results\n\nThe tuned preset reaches FID 3.36 after 5 minutes.\n"
    [finding] = _check(guard, text)
    assert str(finding).startswith("page.md:3: 3.36 (a decimal) is neither rendered")


def test_a_rendered_number_passes_and_a_hand_edit_of_it_fails(guard):
    render = {"demo": "FID 3.36 _(5 min; 2026-11-30; current)_"}.__getitem__
    block = ("<!-- rendered from records: demo (docs/generate.py writes this block; do not "
             "edit) -->\n\n{}\n\n<!-- end rendered -->\n")
    assert _check(guard, "# R\n\n" + block.format(render("demo")), render) == []
    edited = block.format("FID 2.10 _(5 min; 2026-11-30; current)_")
    [finding] = _check(guard, "# R\n\n" + edited, render)
    assert finding.line == 3 and "rendered block 'demo' differs" in finding.what


def test_a_history_region_must_show_its_notice_and_name_records(guard):
    body = "Earlier the preset read 0.994.\n<!-- end history -->\n"
    good = f"<!-- history: bench=kmnist source=kmnist_acgan.json -->\n\n{NOTICE}\n{body}"
    assert _check(guard, good) == []
    no_notice = "<!-- history: bench=kmnist -->\n\n" + body
    assert "opens with a visible notice" in _check(guard, no_notice)[0].what
    for selector, why in (("bench=parzen", "no record has bench 'parzen'"),
                          ("source=parzen_mnist.json", "no record has source"),
                          ("kmnist", "write KEY=VALUE")):
        [finding] = _check(guard, f"<!-- history: {selector} -->\n\n{NOTICE}\n{body}")
        assert why in finding.what, selector


def test_regions_must_close_and_nest(guard):
    opened = f"<!-- history: bench=kmnist -->\n\n{NOTICE}\nStill 0.994 at the end.\n"
    assert "history region is never closed" in _check(guard, opened)[0].what
    stray = "Prose.\n<!-- end rendered -->\n"
    assert "closes no rendered region" in _check(guard, stray)[0].what


def test_a_citation_names_a_reproduced_document(guard):
    cited = "<!-- cited: {} -->\nThe paper reported 132 ± 1.8.\n<!-- end cited -->\n"
    assert _check(guard, cited.format("seed 003")) == []
    [finding] = _check(guard, cited.format("a blog post"))
    assert "no preset's `reproduces` document" in finding.what


def test_code_comments_and_link_targets_are_not_read(guard):
    text = ("Run `ganforge train --set optim.lr_g=0.0002` ([notes](notes-1.5.md)).\n"
            "<!-- measured 0.994 once -->\n```bash\nganforge evaluate run --n 0.5\n```\n")
    assert _check(guard, text) == []


@pytest.mark.parametrize("line", [
    "`cgan-seed001-mnist` reproduces seed 001 on 28 px digits", "r3gan-celeba32 on 28×28 or 28x28",
    "after 5 minutes of training on a 2-core CPU, 3 seeds, 10,000 samples",
    "PyTorch 2.14.1 / torchvision 0.29.1 on Python 3.11+", "Kuzushiji-49 and CIFAR-10, fp32, H200",
    "(Mirza & Osindero 2014), lr 5e-5, the 100-class benchmark", "## Seed 000: ACGAN"])
def test_structural_numbers_pass(guard, line):
    assert guard.measured_numbers(line) == []


@pytest.mark.parametrize("line, number, why", [
    ("label accuracy 0.994", "0.994", "a decimal"), ("runs 3.7× the loop", "3.7", "a ratio"),
    ("a 3x speed-up", "3", "a ratio"), ("uses 30% of the peak", "30", "a percentage"),
    ("between 16–19× the floor", "16–19", "a ratio"), ("FID 82 in its space", "82",
                                                         "a metric's value"),
    ("3 min 12 s in all", "12", "a measurement in s"),
    ("at 3,568 images/s", "3,568", "a measurement in images/s"),
    ("the cGAN −97 of it", "97", "a signed value"), ("112 ± 6", "112", "a ± interval")])
def test_measured_looking_numbers_are_caught(guard, line, number, why):
    assert (number, why) in guard.measured_numbers(line)


def test_the_guard_covers_the_results_pages():
    guard = _module("guard")
    pages = {p.relative_to(REPO).as_posix() for p in guard.guarded_pages(REPO)}
    assert {"README.md", "REPRODUCTIONS.md", "docs/reference/reproductions.md",
            "docs/results/quality.md", "docs/results/speed.md", "docs/results/parzen.md"} <= pages


def test_every_page_with_a_rendered_block_is_one_the_generator_fills():
    """A block on a page ``docs/generate.py`` does not list would never be written again."""
    generate = _module("generate")
    pages = [REPO / "README.md", REPO / "REPRODUCTIONS.md", *(REPO / "docs").rglob("*.md")]
    holding = {p.resolve() for p in pages if any(
        line.startswith("<!-- rendered from records: ") for line in p.read_text().splitlines())}
    assert holding == {(generate.DOCS / page).resolve() for page in generate.BLOCK_PAGES}


def test_every_number_on_the_guarded_pages_is_rendered_history_or_cited():
    """The check itself, on the pages as committed (``python docs/guard.py`` prints the
    same list)."""
    failures = _module("guard").check_repo(REPO)
    assert not failures, "\n".join(map(str, failures))
