"""Registry-wide model tests: every family × size × conditioning it supports gets the same checks.

A new family registered in ``ganforge.models`` is picked up here without new test code. Widths
are tiny so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import family_config
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import MODELS, Discriminator, DOutput, Generator, build_from_config, build_models, model_args

N = 4  # batch; > 1 so BatchNorm works in train mode
K = 3  # classes of the fake labelled dataset
SHAPES = [(1, 28, 28), (3, 32, 32), (1, 64, 64), (2,)]

# What each known family must support (a family may support more; new families are only
# required to support at least one case, see test_every_family_builds_something).
REQUIRED = {
    "mlp": {(s, c) for s in SHAPES for c in (False, True)},
    "dcgan": {(s, c) for s in SHAPES[:3] for c in (False, True)},
    "cgan-paper": {(s, True) for s in SHAPES[:3]},
    "dcgan-seed002": {((1, 28, 28), False)},
}


def tiny_cfg(arch: str, conditional: bool, **overrides) -> ModelConfig:
    values = dict(
        arch=arch, conditional=conditional, z_dim=8, g_hidden=[16, 32], d_hidden=[32, 16],
        g_width=4, d_width=4, g_dropout=0.1, d_dropout=0.1,
    )
    values.update(overrides)
    return family_config(**values)


def _cases() -> tuple[list[tuple[str, tuple[int, ...], bool]], dict[str, set]]:
    supported, by_family = [], {arch: set() for arch in MODELS.names()}
    for arch in MODELS.names():
        for shape in SHAPES:
            for cond in (False, True):
                try:
                    model_args(tiny_cfg(arch, cond), shape, K)
                except ConfigError:
                    continue
                supported.append((arch, shape, cond))
                by_family[arch].add((shape, cond))
    return supported, by_family


CASES, SUPPORT = _cases()
CASE_IDS = [f"{a}-{'x'.join(map(str, s))}-{'cond' if c else 'uncond'}" for a, s, c in CASES]


def _inputs(G: Generator, cond: bool, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(N, G.z_dim, generator=gen)
    y = torch.arange(N) % K if cond else None
    return z, y


def test_registry_has_the_seed_families():
    assert {"mlp", "dcgan", "cgan-paper", "dcgan-seed002"} <= set(MODELS.names())


@pytest.mark.parametrize("arch", MODELS.names())
def test_every_family_builds_something(arch):
    assert SUPPORT[arch], f"family {arch} builds none of the test shapes {SHAPES}"
    assert REQUIRED.get(arch, set()) <= SUPPORT[arch]
    assert MODELS.doc(arch)


@pytest.mark.parametrize(("arch", "shape", "cond"), CASES, ids=CASE_IDS)
def test_shapes_and_ranges(arch, shape, cond):
    torch.manual_seed(0)
    G, D, args = build_from_config(tiny_cfg(arch, cond), shape, K)
    assert isinstance(G, Generator) and isinstance(D, Discriminator)
    assert G.n_classes == (K if cond else 0) and D.n_classes == G.n_classes
    assert tuple(G.out_shape) == shape
    z, y = _inputs(G, cond)
    G.train(), D.train()
    x = G(z, y)
    assert x.shape == (N, *shape)
    if len(shape) == 3:  # images are squashed into [-1, 1]; vectors (linear output) are not
        assert x.min() >= -1.0 and x.max() <= 1.0
    out = D(x, y)
    assert isinstance(out, DOutput)
    assert out.adv.shape == (N,)
    assert out.features is not None and out.features.dim() == 2 and out.features.shape[0] == N
    # Raw logits: not squashed into (0, 1) by a sigmoid inside D.
    assert out.adv.dtype == torch.float32 and torch.isfinite(out.adv).all()
    # The stored kwargs must survive a JSON round trip unchanged (they go into checkpoints).
    assert json.loads(json.dumps(args)) == args


@pytest.mark.parametrize(("arch", "shape", "cond"), CASES, ids=CASE_IDS)
def test_one_train_step_changes_weights(arch, shape, cond):
    torch.manual_seed(0)
    G, D, _ = build_from_config(tiny_cfg(arch, cond), shape, K)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
    z, y = _inputs(G, cond)
    real = torch.rand(N, *shape) * 2 - 1

    before_d = [p.detach().clone() for p in D.parameters()]
    d_real, d_fake = D(real, y).adv, D(G(z, y).detach(), y).adv
    loss_d = F.binary_cross_entropy_with_logits(d_real, torch.ones(N)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros(N))
    opt_d.zero_grad()
    loss_d.backward()
    _assert_all_grads(D)
    opt_d.step()
    _assert_all_changed(D, before_d)

    before_g = [p.detach().clone() for p in G.parameters()]
    loss_g = F.binary_cross_entropy_with_logits(D(G(z, y), y).adv, torch.ones(N))
    opt_g.zero_grad()
    loss_g.backward()
    _assert_all_grads(G)
    opt_g.step()
    _assert_all_changed(G, before_g)
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)


def _assert_all_grads(net: nn.Module) -> None:
    # A parameter without a gradient is a branch the forward pass never used (e.g. a label path).
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


def _assert_all_changed(net: nn.Module, before: list[torch.Tensor]) -> None:
    for (name, p), old in zip(net.named_parameters(), before):
        assert not torch.equal(p.detach(), old), f"{name} did not change after one step"


@pytest.mark.parametrize(("arch", "shape", "cond"), CASES, ids=CASE_IDS)
def test_rebuild_from_stored_kwargs(arch, shape, cond):
    torch.manual_seed(0)
    G, D, args = build_from_config(tiny_cfg(arch, cond), shape, K)
    z, y = _inputs(G, cond)
    with torch.no_grad():  # one train-mode pass so BatchNorm running stats are not the defaults
        D(G(z, y), y)
    stored = json.loads(json.dumps(args))
    torch.manual_seed(123)  # different init, so equality below comes from load_state_dict
    G2, D2 = build_models(arch, stored)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    for net in (G, D, G2, D2):
        net.eval()
    with torch.no_grad():
        x, x2 = G(z, y), G2(z, y)
        assert torch.equal(x, x2)
        out, out2 = D(x, y), D2(x, y)
    assert torch.equal(out.adv, out2.adv)
    assert torch.equal(out.features, out2.features)


@pytest.mark.parametrize(("arch", "shape", "cond"), CASES, ids=CASE_IDS)
def test_no_batchnorm_eps_typo(arch, shape, cond):
    G, D, _ = build_from_config(tiny_cfg(arch, cond), shape, K)
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                assert m.eps == pytest.approx(1e-5)


@pytest.mark.parametrize("arch", MODELS.names())
def test_conditional_without_classes_is_a_config_error(arch):
    shapes = sorted({s for s, c in SUPPORT[arch] if c}, key=len, reverse=True)
    if not shapes:
        pytest.skip(f"{arch} has no conditional variant")
    with pytest.raises(ConfigError) as err:
        model_args(tiny_cfg(arch, True), shapes[0], 0)
    assert "model.conditional" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("arch", MODELS.names())
def test_unconditional_ignores_dataset_classes(arch):
    cases = [s for s, c in SUPPORT[arch] if not c]
    if not cases:
        pytest.skip(f"{arch} has no unconditional variant")
    G, D, args = build_from_config(tiny_cfg(arch, False), cases[0], 10)
    assert G.n_classes == 0 and D.n_classes == 0
    assert all(args[part].get("n_classes", 0) == 0 for part in args)


@pytest.mark.parametrize("arch", MODELS.names())
def test_data_kind_mismatch_is_a_config_error(arch):
    spec = MODELS.get(arch)
    shape = (2,) if not spec.vectors else (1, 28, 28) if not spec.image else None
    if shape is None:
        pytest.skip(f"{arch} accepts both images and vectors")
    with pytest.raises(ConfigError) as err:
        model_args(tiny_cfg(arch, False), shape, K)
    assert "\n" not in str(err.value)


def test_unknown_family_lists_valid_names():
    with pytest.raises(ConfigError, match="dcgan"):
        model_args(tiny_cfg("no-such-gan", False), (1, 28, 28), K)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_dcgan_discriminator_norms(norm):
    G, D, _ = build_from_config(tiny_cfg("dcgan", True, d_norm=norm), (3, 32, 32), K)
    kinds = {type(m) for m in D.modules()}
    expected = {"batch": nn.BatchNorm2d, "layer": nn.LayerNorm, "none": None}[norm]
    if expected is None:
        assert not kinds & {nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm}
    else:
        assert expected in kinds
    z, y = _inputs(G, True)
    # LayerNorm critics (WGAN-GP) must work per sample, even with a batch of one.
    out = D.eval()(G.eval()(z[:1], y[:1]), y[:1])
    assert out.adv.shape == (1,)
