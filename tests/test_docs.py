"""The documentation site: its generated pages say what the code says, and it builds in strict
mode (a broken link or a missing reference fails)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

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
