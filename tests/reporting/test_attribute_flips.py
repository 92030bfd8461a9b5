"""Attribute flip grids: each attribute off and on with z and the other attributes fixed, in
report.html for attribute-conditioned runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import api
from ganforge.reporting.generated import SampleSource, attribute_flips, flip_attributes
from ganforge.reporting.report import build_report
from ganforge.run.sampling import NoiseSampler
from tests.conftest import fast_overrides
from tests.data.conftest import fake_celeba  # noqa: F401  (fixture)
from tests.reporting.conftest import decoded_images, train_on_fake_faces


class ShowsItsInputs(nn.Module):
    """A 'generator' whose 8x8 image shows its inputs: in the red plane, pixel row j is white
    when attribute j is asked for; the green plane is z[0] everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # so it has a device

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = torch.full((len(z), 3, 8, 8), -1.0)
        x[:, 0] = (y[:, :8] * 2 - 1)[:, :, None].expand(-1, 8, 8)
        x[:, 1] = z[:, :1, None].clamp(-1, 1).expand(-1, 8, 8)
        return x


NAMES = ["Bald", "Smiling", "Male", "Young", "Eyeglasses", "Blond_Hair", "Bangs", "Wavy_Hair"]


def source(rows: torch.Tensor, names=NAMES) -> SampleSource:
    noise = NoiseSampler(4, "normal", len(names), torch.device("cpu"))
    return SampleSource(ShowsItsInputs(), noise, 0, names, 7, "test G", True, rows)


def cells(grid: np.ndarray, rows: int) -> list[list[np.ndarray]]:
    """The (8, 8, 3) images of a 2-column grid with 2 px padding."""
    return [[grid[2 + 10 * r:10 + 10 * r, 2 + 10 * c:10 + 10 * c] for c in range(2)]
            for r in range(rows)]


def test_each_grid_flips_one_attribute_and_keeps_z_and_the_rest():
    rows = torch.tensor([[1, 1, 0, 0, 1, 0, 1, 0], [0, 0, 1, 1, 0, 1, 0, 1],
                         [1, 0, 1, 0, 1, 0, 1, 0]]).float()
    grids = attribute_flips(source(rows))
    assert [name for name, _ in grids] == ["Smiling", "Eyeglasses", "Male", "Blond_Hair",
                                           "Young"]
    for name, grid in grids:
        column = NAMES.index(name)
        assert grid.shape == (2 + 10 * 3, 2 + 10 * 2, 3)
        for r, (off, on) in enumerate(cells(grid, 3)):
            red_off, red_on = off[:, 0, 0] > 127, on[:, 0, 0] > 127  # one value per pixel row
            assert not red_off[column] and red_on[column]
            others = [j for j in range(8) if j != column]
            assert (red_off[others] == red_on[others]).all()
            assert (red_on[others] == (rows[r, others] > 0.5).numpy()).all()
            assert np.array_equal(off[..., 1], on[..., 1])  # the same z in both columns
    greens = [cells(grids[0][1], 3)[r][0][0, 0, 1] for r in range(3)]
    assert len(set(greens)) == 3  # each row its own z


def test_which_attributes_are_flipped():
    assert flip_attributes(NAMES, 8)[:2] == [(1, "Smiling"), (4, "Eyeglasses")]
    other = [f"a{j}" for j in range(6)]
    assert flip_attributes(other, 6) == [(0, "a0"), (1, "a1"), (2, "a2"), (3, "a3")]
    assert flip_attributes(None, 2) == [(0, "attribute 0"), (1, "attribute 1")]
    grids = attribute_flips(source(torch.ones(2, 8)), attributes=["Bangs", "Nope"])
    assert [name for name, _ in grids] == ["Bangs"]


def test_flips_need_binary_attribute_rows():
    with pytest.raises(ValueError, match="0/1 attribute rows"):
        attribute_flips(source(torch.full((2, 8), 0.3)))
    with pytest.raises(ValueError, match="attribute rows"):
        attribute_flips(source(None))


def test_the_trainers_report_shows_the_flips(tmp_path, fake_celeba):  # noqa: F811
    train_on_fake_faces(tmp_path, fake_celeba, "acgan-celeba64-attributes")
    html = (tmp_path / "r" / "report.html").read_text()
    assert '<section id="attributes">' in html and 'href="#attributes"' in html
    # The fake faces name none of Smiling, Eyeglasses, ...: their first four attributes.
    assert html.count('class="card" data-attribute=') == 4
    assert 'data-attribute="5_o_Clock_Shadow"' in html
    flips = [img for img in decoded_images(html) if img.size == (2 + 18 * 2, 2 + 18 * 4)]
    assert len(flips) == 4  # 4 rows of 16 px faces, off and on
    # Rebuilt from the checkpoint alone (no data rows): a note instead.
    html = build_report(tmp_path / "r").read_text()
    assert "data-attribute=" not in html
    assert "the flips are drawn by the report the trainer writes" in html


def test_the_cpu_sized_attribute_preset_projects_the_attributes_and_shows_flips(
        tmp_path, fake_celeba):  # noqa: F811
    run_dir = train_on_fake_faces(tmp_path, fake_celeba, "r3gan-celeba32-attributes")
    record = json.loads((run_dir / "model.json").read_text())
    d_args = record["model_args"]["discriminator"]
    # D sees the face alone and scores <embed(y), phi(x)>; no BatchNorm (R1/R2 need it so).
    assert (d_args["label_mode"], d_args["multi_label"], d_args["norm"]) == (
        "projection", True, "none")
    assert record["n_classes"] == len(record["class_names"]) > 1
    html = (run_dir / "report.html").read_text()
    assert html.count('class="card" data-attribute=') == 4


def test_runs_without_attribute_conditions_have_no_flips_section(tmp_path):
    api.train("cgan-digits", overrides=fast_overrides() + ["log.report_every_s=0"],
              out=str(tmp_path / "r"), log=lambda m: None)
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'id="attributes"' not in html and 'href="#attributes"' not in html
