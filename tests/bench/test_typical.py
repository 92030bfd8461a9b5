"""The typical training loop ganforge is measured against: the tutorials' data path and loop on
the preset's own nets, trained to a budget, its G saved so that it is scored like any run."""

from __future__ import annotations

import pytest
import torch

from ganforge import api
from ganforge.bench.typical import TYPICAL, ArrayPIL, build_typical, standard_transform


@pytest.fixture(scope="module")
def digits():
    return api.load_dataset("digits", split="test")


def test_the_data_path_serves_pil_images_normalised_one_at_a_time(digits):
    data = ArrayPIL(digits.x[:4], digits.y[:4], standard_transform())
    image, label = data[2]
    assert image.shape == (1, 28, 28) and label == int(digits.y[2])
    expected = digits.x[2].float() / 255 * 2 - 1
    assert torch.allclose(image, expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TYPICAL))
def test_every_typical_loop_trains_and_saves_a_loadable_g(name, digits, tmp_path):
    torch.set_num_threads(1)
    loop = build_typical(name, seed=0, data=digits)
    facts = loop.train_for(tmp_path / name, steps=2, save_minutes=(0.0,))
    assert facts["steps"] == 2 and facts["images_per_s"] > 0
    assert loop.images_per_step() == loop.batch_size * TYPICAL[name].n_critic
    saved = sorted(p.name for p in (tmp_path / name / "checkpoints").glob("*.json"))
    assert saved == ["min_0.json", "step_000000002.json"]
    run = api.load_run(tmp_path / name)
    assert run.step == 2
    labels = [1, 2] if loop.conditional else None
    assert run.generate(n=2, labels=labels).shape == (2, 1, 28, 28)


def test_a_seed_fixes_the_first_steps(digits, tmp_path):
    torch.set_num_threads(1)
    loops = []
    for name in ("a", "b"):  # the loop seeds torch's global generator: one after the other
        loops.append(build_typical("typical-cgan", 3, digits))
        loops[-1].train_for(tmp_path / name, steps=2)
    a, b = loops
    for x, y in zip(a.G.state_dict().values(), b.G.state_dict().values()):
        assert torch.equal(x, y)
