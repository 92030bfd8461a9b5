"""ganforge compare: config differences, metric table with mean ± std over seeds, errors."""

from __future__ import annotations

import json
import re
import shutil
import statistics

import pytest

from ganforge import cli
from ganforge.config import resolve
from ganforge.errors import GanforgeError
from ganforge.reporting.compare import (averaged_groups, build_compare, config_differences,
                                        labels_for, mean_std, seed_groups)
from ganforge.reporting.page import format_number
from ganforge.run.folder import RunFolder
from tests.reporting.conftest import assert_self_contained, decoded_images


def fake_run(path, overrides, fid_values, images_per_s=100.0):
    """A run folder with a config, stats lines holding Metrics/fid and a summary (no training)."""
    cfg = resolve("cgan-mnist", overrides=overrides)
    path.mkdir(parents=True)
    (path / "config.json").write_text(cfg.to_json())
    lines = [{"step": 10 * (i + 1), "Loss/D": 1.0 + i, "Loss/G": 2.0 - i, "Metrics/fid": v}
             for i, v in enumerate(fid_values)]
    (path / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (path / "summary.json").write_text(json.dumps({
        "steps": 10 * len(fid_values), "elapsed_s": 5.0, "images_per_s": images_per_s}))
    return path


@pytest.fixture
def three_runs(tmp_path):
    a = fake_run(tmp_path / "a", ["train.seed=0", "run_name=a"], [30.0, 10.0])
    b = fake_run(tmp_path / "b", ["train.seed=1", "run_name=b"], [20.0, 14.0], 120.0)
    c = fake_run(tmp_path / "c", ["optim.lr_d=1e-3"], [40.0, 35.0])
    return [a, b, c]


def test_config_differences_lists_only_differing_keys(three_runs):
    runs = [RunFolder.read(p) for p in three_runs]
    rows = {r["key"]: r["cells"] for r in config_differences(runs)}
    assert rows == {
        "optim.lr_d": ["0.0002", "0.0002", "0.001"],
        "run_name": ['"a"', '"b"', "null"],
        "train.seed": ["0", "1", "0"],
    }


def test_runs_that_differ_only_by_seed_are_grouped(three_runs):
    runs = [RunFolder.read(p) for p in three_runs]
    assert seed_groups(runs) == [[0, 1], [2]]
    mean, std, n = mean_std([10.0, 14.0, None, float("nan")])
    assert (mean, n) == (12.0, 2) and std == pytest.approx(statistics.stdev([10.0, 14.0]))
    assert mean_std([3.0]) is None


def test_compare_page_metric_table_with_mean_and_std(three_runs, tmp_path):
    out = build_compare(three_runs, tmp_path / "page.html")
    html = out.read_text()
    assert_self_contained(html)
    assert "mean ± std over 2 seeds: a + b" in html
    row = re.search(r"<tr><td>fid \(final\)</td>(.*?)</tr>", html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    # a, b, c, then the seed group a + b: mean 12, sample std 2.828 (two significant digits)
    assert cells == ["10", "14", "35", "12 ± 2.8"]
    best = re.search(r"<tr><td>fid \(best\)</td>(.*?)</tr>", html, re.S).group(1)
    assert re.findall(r'<td class="num( changed)?">(.*?)</td>', best)[:3] == [
        (" changed", "10"), ("", "14"), ("", "35")]  # lower FID is better: a is marked
    assert html.count('data-key="') == 3  # lr_d, run_name, seed
    assert len(decoded_images(html)) == 1  # one curve group (D and G loss), no grids
    assert html.count("no label accuracy (the folder has no model.json)") == 3


def test_compare_real_runs_shows_label_accuracy_and_grids(cgan_runs, tmp_path):
    out = tmp_path / "cmp.html"
    assert cli.main(["compare", *map(str, cgan_runs), "--out", str(out)]) == 0
    html = out.read_text()
    assert_self_contained(html)
    assert "label accuracy (this page&#39;s samples)" in html
    assert "Label accuracy per class" in html and "mean ± std over 2 seeds" in html
    images = decoded_images(html)
    grids = re.findall(r'alt="final grid of ([^"]+)"', html)
    assert grids == labels_for([RunFolder.read(p) for p in cgan_runs])
    assert len(images) == 2 + 4  # two grids, four curve groups


def test_labels_are_unique_even_for_equal_folder_names(tmp_path):
    a = fake_run(tmp_path / "x" / "run", [], [1.0])
    b = fake_run(tmp_path / "y" / "run", [], [2.0])
    assert labels_for([RunFolder.read(a), RunFolder.read(b)]) == ["x/run", "y/run"]


def test_compare_errors_are_one_line(three_runs, tmp_path, capsys):
    with pytest.raises(GanforgeError, match="at least two run folders"):
        build_compare(three_runs[:1])
    assert cli.main(["compare", str(three_runs[0]), str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"'{tmp_path / 'nothing'}' does not exist" in err
    assert cli.main(["compare", str(three_runs[0])]) == 2
    assert "at least two run folders" in capsys.readouterr().err


def test_compare_shows_the_evaluators_disagreement_and_which_evaluator(cgan_runs, tmp_path):
    out = tmp_path / "cmp.html"
    assert cli.main(["compare", *map(str, cgan_runs), "--out", str(out)]) == 0
    html = out.read_text()
    row = re.search(r"<td>evaluator disagreement \(same samples\)</td>(.*?)</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num([^"]*)">([^<]*)</td>', row.group(1))[:2]  # per run
    assert len(cells) == 2 and all(c == "" for c, _ in cells)  # no "best" run for it
    assert all(0.0 <= float(v) <= 1.0 for _, v in cells)
    assert html.count("<code>synthetic-lenet v2 ") == 2  # the evaluator of each run, by version
    assert 'data-flag="evaluators"' not in html  # one evaluator for both: comparable


def test_compare_flags_results_scored_by_different_evaluators(three_runs, tmp_path):
    for run, (recipe, sha) in zip(three_runs[:2], [(2, "aaaa1111"), (1, "bbbb2222")]):
        protocol = {"extractor": "mnist-lenet", "extractor_recipe": recipe,
                    "extractor_sha256": sha + "0" * 56}
        (run / "metrics.json").write_text(json.dumps({"results": [
            {"name": "acc10k_mnist-lenet", "value": 0.9, "details": {}, "protocol": protocol}]}))
    out = build_compare(three_runs[:2], tmp_path / "cmp.html")
    html = out.read_text()
    flags = re.findall(r'<p class="warning" data-flag="evaluators">(.*?)</p>', html, re.S)
    assert len(flags) == 1
    assert "evaluate: acc10k_mnist-lenet" in flags[0] and "not comparable" in flags[0]
    assert "mnist-lenet v2 aaaa1111" in flags[0] and "mnist-lenet v1 bbbb2222" in flags[0]


def _cells(html: str, row: str) -> list[str]:
    found = re.search(rf"<tr><td>{row}</td>(.*?)</tr>", html, re.S).group(1)
    return re.findall(r"<td[^>]*>(.*?)</td>", found)


def test_a_run_and_its_copy_are_not_averaged(tmp_path):
    a = fake_run(tmp_path / "a", ["train.seed=0"], [30.0, 10.0])
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    runs = [RunFolder.read(p) for p in (a, copy)]
    assert seed_groups(runs) == [[0, 1]]  # one setting ...
    assert averaged_groups(runs, ["a", "copy"]) == (  # ... but not two seeds of it
        [], ["runs a and copy share seed 0: shown side by side, not averaged"])
    html = build_compare([a, copy], tmp_path / "page.html").read_text()
    assert "mean ± std over" not in html
    assert re.findall(r'<p class="note" data-flag="seeds">(.*?)</p>', html) == [
        "runs a and copy share seed 0: shown side by side, not averaged"]
    assert _cells(html, r"fid \(final\)") == ["10", "10"]  # side by side, no group column


def test_only_runs_of_distinct_seeds_are_averaged(tmp_path):
    paths = [fake_run(tmp_path / name, [f"train.seed={seed}"], [value])
             for name, seed, value in (("a", 0, 10.0), ("b", 1, 14.0), ("c", 0, 12.0),
                                       ("d", 2, 20.0), ("e", 3, 22.0))]
    runs = [RunFolder.read(p) for p in paths]
    runs[3].config["optim"]["lr_d"] = runs[4].config["optim"]["lr_d"] = 1e-3  # another setting
    assert averaged_groups(runs, ["a", "b", "c", "d", "e"]) == (
        [[3, 4]], ["runs a and c share seed 0: shown side by side, not averaged"])


def test_whole_numbers_print_as_integers(tmp_path):
    paths = [fake_run(tmp_path / name, [f"train.seed={seed}"], [10.0, 12.0])
             for name, seed in (("a", 0), ("b", 1))]
    for path, steps in zip(paths, (11800, 11850)):
        (path / "summary.json").write_text(json.dumps(
            {"steps": steps, "elapsed_s": 1234.5, "images_per_s": 12345.6}))
    html = build_compare(paths, tmp_path / "page.html").read_text()
    assert _cells(html, "steps") == ["11800", "11850", "11825 ± 35"]
    assert _cells(html, r"images/s") == ["12346", "12346", "12346 ± 0"]
    assert _cells(html, r"training time \(s\)") == ["1234", "1234", "1234 ± 0"]
    assert [format_number(v) for v in (11800.0, 2.5, 0.000123456, 1e20, float("nan"), 7)] == [
        "11800", "2.5", "0.0001235", "1e+20", "nan", "7"]
