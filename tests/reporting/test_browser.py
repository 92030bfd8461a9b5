"""The report and compare pages in a real browser: headless Chromium, no console messages,
every image decoded, and a screenshot taken.

How: ``chromium --headless --dump-dom`` prints the DOM after the load event; the pages' own
script has written the number of images and of undecoded images into ``<body>`` by then.
``--enable-logging=stderr`` prints every console message (script errors, blocked loads — the
pages' Content Security Policy blocks anything that is not inline) as a ``CONSOLE`` line.
``--screenshot`` renders the page to a PNG.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from PIL import Image

from ganforge.reporting.compare import build_compare

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 2400)


def find_chromium() -> Optional[str]:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary on PATH (looked for " + ", ".join(BROWSERS) +
    "); `.ci/run` installs Debian's chromium package where apt-get can")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-extensions", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def check_page(page: Path, tmp_path: Path) -> None:
    html = page.read_text()
    expected_images = len(re.findall(r"<img\b", html))
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attributes.get("data-images") == str(expected_images), attributes
    assert attributes.get("data-images-broken") == "0", attributes
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []

    shot = tmp_path / f"{page.stem}.png"
    result = chromium(tmp_path, f"--window-size={WINDOW[0]},{WINDOW[1]}",
                      f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        image.load()
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (WINDOW[1], WINDOW[0], 3)
    assert pixels.std() > 10  # a rendered page, not a blank canvas


def test_report_opens_in_chromium(cgan_runs, tmp_path):
    check_page(cgan_runs[0] / "report.html", tmp_path)


def test_compare_opens_in_chromium(cgan_runs, tmp_path):
    check_page(build_compare(cgan_runs, tmp_path / "compare.html"), tmp_path)


def test_the_check_catches_broken_images_and_blocked_loads(cgan_runs, tmp_path):
    """The same check fails on a report with a corrupt image, and on one that loads a
    stylesheet from the network (blocked by the page's policy, reported on the console)."""
    html = (cgan_runs[0] / "report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace(
        "<main>", '<main><img src="data:image/png;base64,iVBORw0KGgo=" alt="corrupt">', 1))
    with pytest.raises(AssertionError, match="data-images-broken"):
        check_page(broken, tmp_path)
    external = tmp_path / "external.html"
    external.write_text(html.replace(
        "<main>", '<main><link rel="stylesheet" href="https://example.com/a.css">', 1))
    with pytest.raises(AssertionError, match="CONSOLE"):
        check_page(external, tmp_path)
