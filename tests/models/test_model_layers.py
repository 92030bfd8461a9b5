"""Layer helpers, weight init, size rules and the fixed-architecture families, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import family_config
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import build_from_config, layers, model_args, summarize
from ganforge.models.dcgan import stages_for
from ganforge.models.layers import (FastDropout, LabelEmbedding, Maxout, conv_norm, dropout,
                                    fast_dropout, init_weights, linear_norm, stock_dropout)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------------------------------------
# Weight init
# ---------------------------------------------------------------------------------------------

def test_normal02_linear_and_batchnorm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1000, 1000), nn.BatchNorm1d(4096), nn.Conv2d(64, 64, 4))
    init_weights(net, "normal02")
    w = net[0].weight
    assert 0.0195 < w.std().item() < 0.0205 and abs(w.mean().item()) < 1e-3
    assert torch.count_nonzero(net[0].bias) == 0
    bn = net[1]
    assert abs(bn.weight.mean().item() - 1.0) < 2e-3 and 0.018 < bn.weight.std().item() < 0.022
    assert torch.count_nonzero(bn.bias) == 0
    assert 0.019 < net[2].weight.std().item() < 0.021


def test_xavier_bounds_and_std():
    torch.manual_seed(0)
    lin = init_weights(nn.Linear(1000, 500), "xavier")
    bound = math.sqrt(6.0 / 1500)
    assert lin.weight.abs().max().item() <= bound
    assert lin.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert torch.count_nonzero(lin.bias) == 0


def test_default_leaves_pytorch_init():
    torch.manual_seed(0)
    a = nn.Linear(64, 64)
    torch.manual_seed(0)
    b = init_weights(nn.Linear(64, 64), "default")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_unknown_init_scheme():
    with pytest.raises(ConfigError, match="normal02"):
        init_weights(nn.Linear(2, 2), "he")


def test_families_apply_the_configured_init():
    torch.manual_seed(0)
    cfg = ModelConfig(arch="dcgan", g_width=32, d_width=32, init="normal02")
    G, D, _ = build_from_config(cfg, (3, 64, 64), 0)
    biggest = max((m for m in D.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
    assert 0.019 < biggest.weight.std().item() < 0.021
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    mean = torch.cat([m.weight for m in bns]).mean().item()
    assert abs(mean - 1.0) < 0.01
    cfg.init = "xavier"
    _, D2, _ = build_from_config(cfg, (3, 64, 64), 0)
    big2 = max((m for m in D2.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())
    fan_in = big2.weight[0].numel()
    fan_out = big2.weight.shape[0] * big2.weight[0, 0].numel()
    assert big2.weight.std().item() == pytest.approx(math.sqrt(2.0 / (fan_in + fan_out)), rel=0.05)


# ---------------------------------------------------------------------------------------------
# Small layers
# ---------------------------------------------------------------------------------------------

def test_maxout_takes_the_max_over_pieces():
    m = Maxout(2, 1, 3)
    with torch.no_grad():
        m.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        m.linear.bias.zero_()
    x = torch.tensor([[2.0, 5.0], [-3.0, -4.0]])
    assert torch.equal(m(x), torch.tensor([[5.0], [7.0]]))
    assert Maxout(784, 240, 5)(torch.zeros(3, 784)).shape == (3, 240)


def test_label_embedding():
    emb = LabelEmbedding(10, 7)
    assert emb(torch.tensor([0, 9, 3])).shape == (3, 7)
    with pytest.raises(ValueError):
        emb(None)


def test_norm_helpers():
    assert isinstance(linear_norm("batch", 8), nn.BatchNorm1d)
    assert isinstance(linear_norm("layer", 8), nn.LayerNorm)
    assert isinstance(linear_norm("none", 8), nn.Identity)
    ln = conv_norm("layer", 16, 8)
    assert isinstance(ln, nn.LayerNorm) and tuple(ln.normalized_shape) == (16, 8, 8)
    assert isinstance(conv_norm("layer", 16), nn.GroupNorm)
    assert isinstance(conv_norm("batch", 16), nn.BatchNorm2d)
    with pytest.raises(ConfigError):
        conv_norm("instance", 16)


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------

def _positive(*shape, dtype=torch.float32):
    """Values in [0.5, 1.5): never zero, so a zero output can only be a dropped element."""
    return (torch.rand(*shape, dtype=torch.float64) + 0.5).to(dtype)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.4, 0.5, 0.9])
def test_dropout_keep_rate_and_independence(p):
    torch.manual_seed(0)
    keep = fast_dropout(_positive(1000, 1000), p) != 0
    assert abs(keep.float().mean().item() - (1 - p)) < 0.005
    # Neighbours share a 64-bit random word: their masks must still be independent.
    both = (keep[:, 0::2] & keep[:, 1::2]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 0.005
    # ... and rows / columns are not copies of each other.
    assert not torch.equal(keep[0], keep[1]) and not torch.equal(keep[:, 0], keep[:, 1])


@pytest.mark.parametrize("p", [0.25, 0.4])
def test_dropout_scales_survivors_and_gradient_exactly(p):
    torch.manual_seed(1)
    x = _positive(300, 301).requires_grad_()  # odd size: the last random word is half used
    out = FastDropout(p)(x)
    keep = out != 0
    assert out.dtype == x.dtype and out.shape == x.shape
    assert torch.equal(out[keep], (x.detach() * (1.0 / (1.0 - p)))[keep])
    g = torch.randn_like(out)
    out.backward(g)
    assert torch.equal(x.grad, torch.where(keep, g * (1.0 / (1.0 - p)), torch.zeros_like(g)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_dropout_other_dtypes_round_once(dtype):
    torch.manual_seed(2)
    p = 0.4
    x = _positive(400, 500, dtype=dtype).requires_grad_()
    out = fast_dropout(x, p)
    keep = out != 0
    assert out.dtype == dtype and abs(keep.float().mean().item() - (1 - p)) < 0.005
    # x * 1/(1-p) rounded once to the dtype, not x times a dtype-rounded 1/(1-p).
    assert torch.equal(out[keep], (x.detach() * (1.0 / (1.0 - p)))[keep])
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad, torch.where(keep, torch.ones_like(x) * (1.0 / (1.0 - p)), 0))


def test_dropout_under_cpu_autocast():
    torch.manual_seed(3)
    lin, drop = nn.Linear(64, 256), FastDropout(0.4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = drop(lin(torch.randn(512, 64)))
    assert out.dtype == torch.bfloat16
    assert abs((out != 0).float().mean().item() - 0.6) < 0.01
    out.float().sum().backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


@pytest.mark.parametrize("preset", ["cgan-mnist", "cgan-paper-mnist", "dcgan-seed002-mnist"])
def test_stock_dropout_swaps_fast_dropout_back(preset):
    """The "typical implementation" runs torch's own nn.Dropout, not ganforge's FastDropout."""
    from ganforge.config import resolve

    cfg = resolve(preset)
    conditional = cfg.model.conditional
    G, D, _ = build_from_config(cfg.model, (1, 28, 28), 10 if conditional else 0)
    before = {net: [(name, m.p) for name, m in net.named_modules() if isinstance(m, nn.Dropout)]
              for net in (G, D)}
    keys = {net: list(net.state_dict()) for net in (G, D)}
    assert any(isinstance(m, FastDropout) for m in D.modules())
    D.eval()  # the swap keeps each layer's train/eval flag
    for net in (G, D):
        assert stock_dropout(net) is net
        after = [(name, m.p) for name, m in net.named_modules() if isinstance(m, nn.Dropout)]
        assert after == before[net]  # same names, same p
        assert all(type(m) is nn.Dropout for m in net.modules() if isinstance(m, nn.Dropout))
        assert list(net.state_dict()) == keys[net]
    assert not any(m.training for m in D.modules()) and all(m.training for m in G.modules())
    y = torch.arange(4) if conditional else None
    assert D(G(torch.randn(4, cfg.model.z_dim), y), y).adv.shape == (4,)


def test_dropout_identity_in_eval_and_at_p0():
    x = torch.randn(64, 32)
    drop = FastDropout(0.5).eval()
    assert drop(x) is x
    assert fast_dropout(x, 0.0) is x and FastDropout(0.0)(x) is x
    assert fast_dropout(x, 0.5, training=False) is x
    assert fast_dropout(torch.empty(0, 3), 0.5).numel() == 0


def test_dropout_same_seed_same_mask():
    x = torch.randn(128, 512)
    torch.manual_seed(7)
    a = fast_dropout(x, 0.4)
    torch.manual_seed(7)
    b = fast_dropout(x, 0.4)
    torch.manual_seed(8)
    c = fast_dropout(x, 0.4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dropout_p1_and_bad_p_like_torch():
    x = torch.randn(10, 10)
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(FastDropout(1.0)(x), F.dropout(x, 1.0))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            FastDropout(bad)
        with pytest.raises(ValueError, match="between 0 and 1"):
            fast_dropout(x, bad)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        dropout(1.0)  # the model helper keeps refusing p = 1 (a config mistake)
    assert isinstance(dropout(0.3), FastDropout) and isinstance(dropout(0.0), nn.Identity)


def test_dropout_cpu_float_takes_the_fast_path(monkeypatch):
    def no_torch_dropout(*args, **kwargs):
        raise AssertionError("F.dropout called on the CPU fast path")

    monkeypatch.setattr(layers.F, "dropout", no_torch_dropout)
    x = torch.randn(64, 512, requires_grad=True)
    fast_dropout(x, 0.4).sum().backward()
    fast_dropout(x.detach(), 0.4)
    fast_dropout(torch.randn(4, 8, 5, 5).to(memory_format=torch.channels_last), 0.25)


def test_dropout_falls_back_to_torch_where_it_should():
    torch.manual_seed(4)
    x = _positive(500, 400)
    out = fast_dropout(x.t(), 0.4)  # not dense in a known layout: F.dropout
    assert out.shape == (400, 500)
    assert abs((out != 0).float().mean().item() - 0.6) < 0.005
    y = _positive(20, 20)
    assert fast_dropout(y, 0.5, inplace=True) is y  # in place, as nn.Dropout(inplace=True)


def test_dropout_channels_last_keeps_its_layout():
    torch.manual_seed(5)
    x = _positive(16, 8, 12, 12).to(memory_format=torch.channels_last).requires_grad_()
    out = fast_dropout(x, 0.25)
    keep = out != 0
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert abs(keep.float().mean().item() - 0.75) < 0.01
    assert torch.equal(out[keep], (x.detach() * (1.0 / 0.75))[keep])
    out.sum().backward()
    assert torch.equal(x.grad, keep.to(x.dtype) * (1.0 / 0.75))


def test_dropout_twice_differentiable():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)

    def f(t):
        torch.manual_seed(6)  # the same mask on every call of the check
        return fast_dropout(t, 0.3) ** 2

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("arch, conditional, shape", [
    ("mlp", True, (1, 28, 28)), ("cgan-paper", True, (1, 28, 28)),
    ("dcgan-seed002", False, (1, 28, 28)), ("dcgan", False, (1, 28, 28)),
])
def test_families_use_fast_dropout(arch, conditional, shape):
    cfg = family_config(arch, conditional=conditional, d_dropout=0.4, g_dropout=0.2,
                        g_width=4, d_width=4)
    G, D, _ = build_from_config(cfg, shape, 10 if conditional else 0)
    drops = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(type(m) is FastDropout for m in drops)
    # Dropout owns no state: no dropout name in the state dict.
    assert not any("drop" in k.lower() for net in (G, D) for k in net.state_dict())


# ---------------------------------------------------------------------------------------------
# DCGAN sizes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "expected"), [(28, (7, 2)), (32, (4, 3)), (64, (4, 4)),
                                                (14, (7, 1)), (8, (4, 1)), (56, (7, 3)), (128, (4, 5))])
def test_dcgan_stage_plan(size, expected):
    assert stages_for(size) == expected


@pytest.mark.parametrize("size", [30, 7, 4, 12, 48, 100])
def test_dcgan_impossible_size(size):
    with pytest.raises(ConfigError) as err:
        model_args(ModelConfig(arch="dcgan"), (3, size, size), 0)
    msg = str(err.value)
    assert f"{size}x{size}" in msg and "28, 32 or 64" in msg and "\n" not in msg


def test_dcgan_non_square_and_28_layout():
    with pytest.raises(ConfigError, match="multiple of 4"):
        model_args(ModelConfig(arch="dcgan"), (1, 28, 30), 0)
    # Non-square shapes whose sides share the stage count work (two-digit numbers: 28x56).
    for norm in ("layer", "batch"):
        G, D, _ = build_from_config(ModelConfig(arch="dcgan", d_norm=norm), (1, 28, 56), 0)
        x = G(torch.randn(2, 100))
        assert x.shape == (2, 1, 28, 56)
        assert D(x).adv.shape == (2,) and D.n_features == 128 * 7 * 14
    G, D, _ = build_from_config(ModelConfig(arch="dcgan"), (1, 28, 28), 0)
    convts = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    # At 28x28 the channel plan equals seed 002's generator: 128x7x7 -> 128 -> 64 -> 1.
    assert G.fc.out_features == 128 * 7 * 7
    assert [(m.in_channels, m.out_channels) for m in convts] == [(128, 128), (128, 64)]
    assert D.n_features == 128 * 7 * 7


# ---------------------------------------------------------------------------------------------
# Seed 002 nets
# ---------------------------------------------------------------------------------------------

def test_seed002_parameter_counts():
    G, D, args = build_from_config(ModelConfig(arch="dcgan-seed002", init="xavier"), (1, 28, 28), 10)
    g_expected = (
        100 * 6272 + 6272        # Linear(100 -> 128*7*7)
        + 128 * 128 * 4 * 4      # ConvT(128 -> 128, k4), bias=False
        + 2 * 128                # BatchNorm2d(128)
        + 128 * 64 * 4 * 4       # ConvT(128 -> 64, k4), bias=False
        + 2 * 64                 # BatchNorm2d(64)
        + 64 * 1 * 3 * 3         # Conv(64 -> 1, k3), bias=False
    )
    d_expected = (
        1 * 32 * 4 * 4 + 32 * 64 * 4 * 4 + 64 * 128 * 3 * 3 + 128 * 256 * 3 * 3  # bias-free convs
        + 256 * 4 * 4 + 1        # Linear(4096 -> 1)
    )
    assert n_params(G) == g_expected == 1_027_648
    assert n_params(D) == d_expected == 406_017
    assert args["generator"]["init"] == "xavier"


def test_seed002_structure_matches_the_seed():
    G, D, _ = build_from_config(ModelConfig(arch="dcgan-seed002"), (1, 28, 28), 0)
    # Same state-dict keys as the seed's PyTorch classes, so its weights load here.
    assert {k.split(".")[0] for k in G.state_dict()} == {"linear", "gen1", "gen2", "gen3"}
    assert "disc4.conv.weight" in D.state_dict() and "out.bias" in D.state_dict()
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.momentum == pytest.approx(0.2) and m.eps == pytest.approx(1e-5) for m in bns)
    drops = [m for m in D.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 4 and all(m.p == 0.25 for m in drops)
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 28, 28), (2,)])
def test_seed002_refuses_other_shapes(shape):
    with pytest.raises(ConfigError, match="dcgan-seed002"):
        model_args(ModelConfig(arch="dcgan-seed002"), shape, 0)


def test_seed002_refuses_conditional():
    with pytest.raises(ConfigError, match="unconditional"):
        model_args(ModelConfig(arch="dcgan-seed002", conditional=True), (1, 28, 28), 10)


# ---------------------------------------------------------------------------------------------
# cGAN paper nets
# ---------------------------------------------------------------------------------------------

def test_cgan_paper_hidden_sizes():
    G, D, _ = build_from_config(ModelConfig(arch="cgan-paper", conditional=True), (1, 28, 28), 10)
    assert (G.z_branch[0].in_features, G.z_branch[0].out_features) == (100, 200)
    assert (G.y_branch[0].in_features, G.y_branch[0].out_features) == (10, 1000)
    assert (G.joint[0].in_features, G.joint[0].out_features) == (1200, 1200)
    assert (G.out.in_features, G.out.out_features) == (1200, 784)
    maxouts = [(m.in_features, m.out_features, m.pieces) for m in D.modules() if isinstance(m, Maxout)]
    assert maxouts == [(784, 240, 5), (10, 50, 5), (290, 240, 4)]
    assert (D.out.in_features, D.out.out_features) == (240, 1)
    assert all(m.p == 0.5 for m in list(G.modules()) + list(D.modules()) if isinstance(m, nn.Dropout))
    g_expected = 100 * 200 + 200 + 10 * 1000 + 1000 + 1200 * 1200 + 1200 + 1200 * 784 + 784
    d_expected = (784 * 1200 + 1200) + (10 * 250 + 250) + (290 * 960 + 960) + 241
    assert n_params(G) == g_expected and n_params(D) == d_expected


def test_cgan_paper_output_is_rescaled_sigmoid():
    torch.manual_seed(0)
    G, _, _ = build_from_config(ModelConfig(arch="cgan-paper", conditional=True), (1, 28, 28), 10)
    G.eval()
    z, y = torch.rand(5, 100), torch.arange(5)
    with torch.no_grad():
        x = G(z, y)
        onehot = torch.eye(10)[y]
        a = G.out(G.joint(torch.cat([G.z_branch(z), G.y_branch(onehot)], 1)))
    assert torch.allclose(x.view(5, -1), 2 * torch.sigmoid(a) - 1)
    assert torch.allclose(x.view(5, -1), torch.tanh(a / 2), atol=1e-6)


def test_cgan_paper_discriminator_reads_pixels_in_0_1():
    torch.manual_seed(0)
    _, D, _ = build_from_config(ModelConfig(arch="cgan-paper", conditional=True), (1, 28, 28), 10)
    D.eval()
    x, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.arange(4)
    with torch.no_grad():
        out = D(x, y)
        # The paper's D on the paper's pixels: the first layer sees (x + 1) / 2.
        hx = D.x_branch(((x + 1) / 2).reshape(4, -1))
        expected = D.out(D.joint(torch.cat([hx, D.y_branch(torch.eye(10)[y])], 1))).squeeze(1)
        on_minus_one_to_one = D.out(D.joint(torch.cat(
            [D.x_branch(x.reshape(4, -1)), D.y_branch(torch.eye(10)[y])], 1))).squeeze(1)
    assert torch.allclose(out.adv, expected)
    assert not torch.allclose(out.adv, on_minus_one_to_one)


def test_cgan_paper_refuses_unconditional():
    with pytest.raises(ConfigError, match="model.conditional=true"):
        model_args(ModelConfig(arch="cgan-paper", conditional=False), (1, 28, 28), 10)


# ---------------------------------------------------------------------------------------------
# MLP details and summary
# ---------------------------------------------------------------------------------------------

def test_mlp_layout_follows_seed001():
    cfg = ModelConfig(arch="mlp", conditional=True, d_dropout=0.4)
    G, D, args = build_from_config(cfg, (1, 28, 28), 10)
    g_linears = [m for m in G.body if isinstance(m, nn.Linear)]
    assert [m.in_features for m in g_linears] == [110, 128, 256, 512]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.body) == 3  # none on the first layer
    assert D.body[0].in_features == 784 + 10
    assert sum(isinstance(m, nn.Dropout) for m in D.body) == 2  # none on the first layer
    cfg.embed_dim = 4
    assert model_args(cfg, (1, 28, 28), 10)["generator"]["embed_dim"] == 4


def test_summary_lists_layers_and_totals():
    G, D, _ = build_from_config(ModelConfig(arch="dcgan", conditional=True, g_width=4, d_width=4),
                                (1, 28, 28), 10)
    G.train()
    text = summarize(G, torch.randn(1, 100), torch.tensor([3]))
    assert G.training  # mode restored
    for name in ("embed.table", "fc", "stages.0", "to_image", "ConvTranspose2d", "[1, 1, 28, 28]"):
        assert name in text
    assert f"Total params: {n_params(G):,}" in text
    text_d = summarize(D, torch.zeros(2, 1, 28, 28), torch.tensor([1, 2]))
    assert f"Trainable params: {n_params(D):,}" in text_d
    assert "adv=[2]" in text_d and "stages.0" in text_d


def test_summary_counts_frozen_parameters():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    net[0].weight.requires_grad_(False)
    text = summarize(net, torch.zeros(1, 3))
    assert "Total params: 26" in text and "Trainable params: 14" in text and "Non-trainable params: 12" in text
