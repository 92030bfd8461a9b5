"""The corruption set: shapes and ranges, determinism, visible change, labels kept, the mix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.metrics.corruptions import (
    CORRUPTIONS,
    ORDER,
    SUITE,
    CorruptionMix,
    apply_suite,
    gaussian_smooth,
    random_affine,
    suite_accuracy,
)
from ganforge.metrics.domain_evaluator import LeNetEvaluator

NAMES = CORRUPTIONS.names()


def digits(n: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) digit-like images in [-1, 1]: dark background, a bright ring and a bar."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centre = 14 + torch.randn(n, 2, generator=gen)
    r = ((yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2).sqrt()
    ring = ((r - 7).abs() < 1.5).float()
    bar = ((xx - 14).abs() < 1.2).float() * (yy > 6).float() * (yy < 22).float()
    return (torch.maximum(ring, bar) * 2 - 1)[:, None]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ registry

def test_registry_order_and_suite_name_the_same_corruptions():
    assert set(NAMES) == set(ORDER) == set(SUITE)
    assert len(NAMES) == 11 and all(0 < s <= 1 for s in SUITE.values())
    with pytest.raises(ConfigError, match="valid corruptions: .*blur"):
        CORRUPTIONS.get("jpeg")


# ------------------------------------------------------------------------------------ contract

@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_range_and_determinism(name):
    fn, x = CORRUPTIONS.get(name), digits()
    out = fn(x, 0.7, gen(3))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()
    assert torch.equal(out, fn(x, 0.7, gen(3)))  # same seed, same images
    rgb = fn(x.expand(-1, 3, -1, -1).contiguous(), 0.7, gen(3))
    assert rgb.shape == (16, 3, 28, 28) and rgb.min() >= -1 and rgb.max() <= 1
    assert fn(x[:0], 0.7, gen(3)).shape == (0, 1, 28, 28)
    if name not in ("blur", "contrast"):  # the only two without randomness
        assert not torch.equal(out, fn(x, 0.7, gen(4)))


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_identity_and_severity_is_per_image(name):
    fn, x = CORRUPTIONS.get(name), digits(8)
    torch.testing.assert_close(fn(x, 0.0, gen()), x, atol=1e-5, rtol=0)
    severity = torch.tensor([0.0, 1.0] * 4)
    out = fn(x, severity, gen())
    torch.testing.assert_close(out[0::2], x[0::2], atol=1e-5, rtol=0)
    assert ((out[1::2] - x[1::2]).abs().mean((1, 2, 3)) > 0.01).all()


@pytest.mark.parametrize("name", NAMES)
def test_the_suite_severity_changes_every_image_measurably(name):
    x = digits(32)
    change = (apply_suite(x, name) - x).abs()
    # Every image moves by at least 0.5% of the range on average (salt-pepper, the sparsest,
    # flips ~2% of the pixels), and the batch by 1.5%.
    assert change.mean((1, 2, 3)).min() > 0.01 and change.mean() > 0.03
    assert torch.equal(apply_suite(x, name), apply_suite(x, name))


def test_bad_severity_is_a_one_line_error():
    x = digits(4)
    for bad, match in ((1.5, r"\[0, 1\]"), (-0.1, r"\[0, 1\]"), (torch.ones(3), "one per image")):
        with pytest.raises(ConfigError, match=match) as info:
            CORRUPTIONS.get("blur")(x, bad, gen())
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ details

def test_noise_levels_and_shares():
    x = torch.full((4, 1, 64, 64), -1.0)
    # salt-pepper at severity 1: 6% of pixels flipped, half of them to white.
    sp = CORRUPTIONS.get("salt-pepper")(x, 1.0, gen())
    assert (sp == 1).float().mean().item() == pytest.approx(0.03, abs=0.005)
    # speckle is multiplicative: a black background stays black.
    assert torch.equal(CORRUPTIONS.get("speckle")(x, 1.0, gen()), x)
    # gaussian noise on mid-grey: std 0.4 at severity 1 (no clipping there).
    grey = torch.zeros(4, 1, 64, 64)
    noise = CORRUPTIONS.get("gaussian-noise")(grey, 1.0, gen())
    assert noise.std().item() == pytest.approx(0.4, rel=0.05)
    # contrast keeps the image mean and scales the deviations by 1 - 0.6 s.
    xd = digits(4)
    low = CORRUPTIONS.get("contrast")(xd, 0.5, gen())
    torch.testing.assert_close(low.mean((1, 2, 3)), xd.mean((1, 2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(low - low.mean((1, 2, 3), keepdim=True),
                               0.7 * (xd - xd.mean((1, 2, 3), keepdim=True)), atol=1e-5, rtol=0)
    # haze only brightens, by at most 35% of the range.
    hz = CORRUPTIONS.get("haze")(x, 1.0, gen())
    assert (hz >= x).all() and hz.max() <= -1 + 0.7 + 1e-5 and hz.max() > -0.9


def test_gaussian_smooth_keeps_the_mean_of_a_flat_image_and_spreads_a_point():
    flat = torch.full((2, 1, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_smooth(flat, 1.0), flat, atol=1e-6, rtol=0)
    point = torch.zeros(1, 1, 15, 15)
    point[0, 0, 7, 7] = 1
    out = gaussian_smooth(point, 1.0)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)  # all mass stays inside
    assert out[0, 0, 7, 7].item() == pytest.approx(1 / (2 * torch.pi), rel=0.03)
    torch.testing.assert_close(out[0, 0], out[0, 0].T)  # isotropic


def test_random_affine_without_range_is_the_identity_and_otherwise_moves_pixels():
    x = digits(8)
    same = random_affine(x, gen(), degrees=0.0, shift=0.0, scale=0.0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    moved = random_affine(x, gen())
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    assert moved.min() >= x.min() - 1e-5 and moved.max() <= x.max() + 1e-5  # no new values


# ------------------------------------------------------------------------------------ the mix

def test_mix_is_deterministic_and_leaves_the_clean_share_with_the_affine_only():
    x = digits(400)
    assert torch.equal(CorruptionMix()(x, gen(1)), CorruptionMix()(x, gen(1)))
    # Without affine, a "clean" image comes back exactly; p = 1 corrupts every other one.
    out = CorruptionMix(p=1.0, clean=0.5, names=["gaussian-noise"])(x, gen(2))
    untouched = (out == x).all(dim=(1, 2, 3)).float().mean().item()
    assert untouched == pytest.approx(0.5, abs=0.08)
    assert torch.equal(CorruptionMix(p=0.0, clean=0.0, names=["blur", "haze"])(x, gen()), x)
    with pytest.raises(ConfigError, match="valid corruptions"):
        CorruptionMix(names=["affine", "sharpen"])
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        CorruptionMix(p=1.5)


def test_suite_accuracy_bookkeeping():
    x = ((digits(10) + 1) * 127.5).round().to(torch.uint8)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    acc = suite_accuracy(lambda xb: torch.zeros(len(xb), dtype=torch.int64), x, y, batch=4)
    assert set(acc) == set(SUITE) | {"mean"}
    assert all(v == 0.3 for k, v in acc.items() if k != "mean")
    assert acc["mean"] == pytest.approx(0.3, abs=1e-12)


# ------------------------------------------------------------------------------------ labels

@pytest.fixture(scope="module")
def held_out_classifier(request):
    """A small LeNet trained on 2,000 real MNIST digits with the corruption mix (3 epochs, ~10 s
    on one thread), and 1,000 other digits held out."""
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("the MNIST test split is not in ../shared/data (offline fixture absent)")
    data = build_dataset(DataConfig(name="mnist", root=str(SHARED_DATA), split="test",
                                    download=False))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = LeNetEvaluator(1, [28, 28], 10, width=8, feature_dim=32, dropout=0.0)
        opt = torch.optim.Adam(net.parameters(), lr=4e-3)
        x, y, g, mix = data.x[:2000].float() / 127.5 - 1, data.y[:2000], gen(0), CorruptionMix()
        for _ in range(3):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 100):
                batch = perm[i:i + 100]
                loss = F.cross_entropy(net(mix(x[batch], g))[1], y[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
    finally:
        torch.set_num_threads(old)
    return net, data.x[9000:], data.y[9000:]


@torch.no_grad()
def test_every_corruption_keeps_the_label_for_a_held_out_classifier(held_out_classifier):
    net, x, y = held_out_classifier
    classify = lambda xb: net(xb)[1].argmax(1)  # noqa: E731
    clean = (classify(x.float() / 127.5 - 1) == y).float().mean().item()
    assert clean > 0.9
    corrupted = suite_accuracy(classify, x, y)
    # A corruption that keeps the digit costs this small, quickly trained net a few points at
    # most (measured: 0.5-5.5 points; the full evaluator loses under 1.5 points on each) ...
    for name in SUITE:
        assert corrupted[name] >= clean - 0.08, f"{name} loses the label: {corrupted[name]:.3f}"
    assert corrupted["mean"] >= clean - 0.04
    # ... while one that destroys the label costs it far more: a half turn (6 <-> 9, most
    # other digits unreadable) drops it by ~60 points.
    turned = (classify(torch.rot90(x.float() / 127.5 - 1, 2, (2, 3))) == y).float().mean()
    assert turned < clean - 0.3
