"""The public API beyond ``train``: a training loop of one's own on a preset's nets
(``build_networks``, ``save_generator``), scored and sampled by ganforge (``evaluate``,
``load_run``), and datasets and evaluators loaded once (``load_dataset``, ``load_evaluator``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge import api
from ganforge.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    return api.load_dataset("digits", split="test")


def test_load_dataset_gives_uint8_images_and_labels(digits):
    assert digits.x.shape == (1000, 1, 28, 28) and digits.x.dtype == torch.uint8
    assert digits.y.shape == (1000,) and set(digits.y.tolist()) == set(range(10))
    with pytest.raises(ConfigError, match="dataset"):
        api.load_dataset("digitz")


def test_plain_networks_use_stock_dropout_and_the_same_weights(digits):
    torch.manual_seed(0)
    fast = api.build_networks("cgan-mnist", digits)
    torch.manual_seed(0)
    plain = api.build_networks("cgan-mnist", digits, plain=True)
    kinds = {type(m) for m in plain.D.modules() if isinstance(m, torch.nn.Dropout)}
    assert kinds == {torch.nn.Dropout}
    assert any(type(m) is not torch.nn.Dropout and isinstance(m, torch.nn.Dropout)
               for m in fast.D.modules())  # what plain=True replaced
    for a, b in zip(fast.D.state_dict().values(), plain.D.state_dict().values()):
        assert torch.equal(a, b)
    assert plain.record["n_classes"] == 10 and plain.record["data_shape"] == [1, 28, 28]


def test_a_generator_of_ones_own_loop_is_loaded_sampled_and_scored(digits, tmp_path):
    torch.manual_seed(0)
    nets = api.build_networks("cgan-digits", digits)
    path = api.save_generator(tmp_path / "run", nets, step=7, elapsed_s=1.5, label="min_1")
    assert path.name == "min_1.json"
    api.save_generator(tmp_path / "run", nets, step=9, elapsed_s=2.0)
    run = api.load_run(tmp_path / "run")
    assert run.step == 9
    images = run.generate(labels=[3, 3, 7])
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    reference = tmp_path / "real.npz"
    np.savez(reference, images=digits.x[:200, 0].numpy(), labels=digits.y[:200].numpy())
    evaluator = api.load_evaluator("digits-lenet")
    first = api.evaluate(tmp_path / "run", ["fid", "label-acc"], evaluator, str(reference),
                         samples=100, checkpoint="min_1")
    assert list(first) == ["fid", "label-acc"]
    assert first["fid"].model["step"] == 7 and first["fid"].value > 0
    again = api.evaluate(tmp_path / "run", ["fid"], evaluator, str(reference), samples=100,
                         checkpoint="min_1")
    assert again["fid"].value == pytest.approx(first["fid"].value, rel=1e-6)  # same seed


def test_save_images_writes_the_npz_evaluate_reads(digits, tmp_path):
    gray = api.save_images(tmp_path / "gray.npz", digits.x[:8], digits.y[:8])
    with np.load(gray) as saved:
        assert saved["images"].shape == (8, 28, 28) and saved["labels"].tolist() == \
            digits.y[:8].tolist()
        assert np.array_equal(saved["images"], digits.x[:8, 0].numpy())
    rgb = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    with np.load(api.save_images(tmp_path / "rgb.npz", rgb)) as saved:
        assert saved["images"].shape == (4, 8, 8, 3) and "labels" not in saved
        assert np.array_equal(saved["images"][1], rgb[1].permute(1, 2, 0).numpy())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.npz", "rgb.npz"]  # no temp left
    result = api.evaluate(gray, ["fid"], "digits-lenet", str(gray), samples=None, real=8)
    assert result["fid"].value == pytest.approx(0.0, abs=1e-3)  # a set against itself
