"""plot_losses output, smoothing, and an import without side effects."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.reporting import moving_average, plot_losses


def _records(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    records = [
        {
            "step": 10 * i,
            "Loss/D/real": 0.7 + 0.1 * rng.standard_normal(),
            "Loss/D/fake": 0.6,
            "Loss/G": 1.0 + 0.01 * i,
            "Prob/D(x)": 0.6,
            "Prob/D(G(z))": 0.4,
        }
        for i in range(n)
    ]
    if n > 5:
        records[3]["Loss/G"] = math.nan
        records[4]["Loss/D/real"] = None
        del records[5]["Prob/D(x)"]
    records.append({"step": 10 * n, "Speed/images_per_s": 100.0})  # no loss keys at all
    return records


@pytest.mark.parametrize("n", [1, 6, 120])
def test_plot_losses_writes_a_decodable_png(tmp_path: Path, n: int) -> None:
    path = plot_losses(_records(n), tmp_path / "plots" / "losses.png", title="toy run")
    assert path == tmp_path / "plots" / "losses.png"
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG" and img.width > 200 and img.height > 200
    assert sorted(p.name for p in path.parent.iterdir()) == ["losses.png"]


def test_plot_losses_without_any_curves(tmp_path: Path) -> None:
    path = plot_losses([], tmp_path / "empty.png")
    with Image.open(path) as img:
        img.load()


def test_failing_plot_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    def half_write_then_fail(self: Figure, fname: object, **kwargs: object) -> None:
        Path(fname).write_bytes(b"partial")  # type: ignore[arg-type]
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(Figure, "savefig", half_write_then_fail)
    with pytest.raises(RuntimeError):
        plot_losses(_records(5), tmp_path / "losses.png")
    assert list(tmp_path.iterdir()) == []


def test_moving_average_ignores_non_finite_values() -> None:
    values = np.array([1.0, 3.0, np.nan, 5.0, np.inf, np.nan, np.nan])
    out = moving_average(values, 2)
    expected = [1.0, 2.0, 3.0, 5.0, 5.0, np.nan, np.nan]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(moving_average(values[:2], 1), [1.0, 3.0])


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    code = (
        "import sys, ganforge.reporting\n"
        "heavy = [m for m in ('matplotlib', 'matplotlib.pyplot', 'torch.utils.tensorboard') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import torch; assert not torch.cuda.is_initialized()\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
