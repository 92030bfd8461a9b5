"""Continuous (N, K) condition vectors through the ``mlp`` and ``dcgan`` families, and the
``mlp`` generator's output layer for vector data."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import family_config
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import MODELS, build_models, model_args
from ganforge.models.layers import LabelEmbedding

N, K = 6, 5
CASES = [("mlp", (2,)), ("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32))]
IDS = [f"{a}-{'x'.join(map(str, s))}" for a, s in CASES]


def cfg(arch: str, **overrides) -> ModelConfig:
    values = dict(arch=arch, conditional=True, z_dim=8, g_hidden=[16, 32], d_hidden=[32, 16],
                  g_width=4, d_width=4, embed_dim=7)
    values.update(overrides)
    return family_config(**values)


def build(arch: str, shape: tuple[int, ...], **overrides):
    """G and D conditioned on K-column condition rows, as training builds them."""
    args = MODELS.get(arch).kwargs(cfg(arch, **overrides), shape, K, multi_label=True)
    args = json.loads(json.dumps(args))  # the checkpoint round trip
    return (*build_models(arch, args), args)


def conditions(seed: int = 0) -> torch.Tensor:
    """(N, K) continuous rows: standardised-looking values, not 0/1."""
    return torch.randn(N, K, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("arch", "shape"), CASES, ids=IDS)
def test_forward_shapes_with_continuous_conditions(arch, shape):
    torch.manual_seed(0)
    G, D, args = build(arch, shape)
    assert args["generator"]["multi_label"] and args["discriminator"]["multi_label"]
    z, y = torch.randn(N, 8), conditions()
    x = G(z, y)
    out = D(x, y)
    assert x.shape == (N, *shape) and out.adv.shape == (N,)
    assert torch.isfinite(x).all() and torch.isfinite(out.adv).all()
    # The condition matters: other rows, same z, other samples and scores.
    y2 = conditions(1)
    assert not torch.allclose(G(z, y2), x)
    assert not torch.allclose(D(x, y2).adv, out.adv)


@pytest.mark.parametrize(("arch", "shape"), CASES, ids=IDS)
def test_gradients_reach_the_condition_embeddings(arch, shape):
    torch.manual_seed(0)
    G, D, _ = build(arch, shape)
    z = torch.randn(N, 8)
    y = conditions().requires_grad_(True)
    D(G(z, y), y).adv.sum().backward()
    for net in (G, D):
        grad = net.embed.table.weight.grad
        assert grad is not None and grad.shape == (K, 7) and grad.abs().sum() > 0
    assert y.grad is not None and y.grad.abs().sum() > 0  # the rows themselves feed the nets


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_projection_head_takes_continuous_conditions(arch):
    torch.manual_seed(0)
    shape = (1, 28, 28)
    G, D, _ = build(arch, shape, d_label="projection")
    y = conditions().requires_grad_(True)
    out = D(G(torch.randn(N, 8), y), y)
    out.adv.sum().backward()
    assert D.embed is None and D.head.project.table.weight.grad.abs().sum() > 0
    assert y.grad.abs().sum() > 0


def test_condition_embedding_is_linear_in_y():
    torch.manual_seed(0)
    emb = LabelEmbedding(3, 4, multi_label=True)
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(emb(2.0 * a - b), 2.0 * emb(a) - emb(b))
    torch.testing.assert_close(emb(torch.eye(3)), emb.table.weight)  # one-hot = lookup
    with pytest.raises(ValueError, match=r"condition rows must have shape \(N, 3\)"):
        emb(torch.randn(2, 4))


def test_mlp_generator_is_linear_for_vectors_and_tanh_for_images():
    vec = model_args(cfg("mlp", conditional=False), (2,), 0)
    img = model_args(cfg("mlp", conditional=False), (1, 28, 28), 0)
    assert vec["generator"]["output"] == "linear" and img["generator"]["output"] == "tanh"
    G, _ = build_models("mlp", vec)
    with torch.no_grad():
        G.out.bias.fill_(3.0)  # a target outside [-1, 1]: reachable only without the tanh
    x = G(torch.randn(N, 8))
    assert (x > 1.0).all()


def test_runs_stored_without_output_rebuild_with_tanh():
    args = model_args(cfg("mlp", conditional=False), (2,), 0)
    del args["generator"]["output"]  # kwargs as runs saved them before the option existed
    G, _ = build_models("mlp", args)
    with torch.no_grad():
        G.out.bias.fill_(3.0)
    x = G(torch.randn(N, 8))
    assert G.output == "tanh" and x.max() <= 1.0


def test_unknown_generator_output_is_refused():
    args = model_args(cfg("mlp", conditional=False), (2,), 0)
    args["generator"]["output"] = "sigmoid"
    with pytest.raises(ConfigError, match="tanh, linear"):
        build_models("mlp", args)


def test_dcgan_refuses_vector_data():
    with pytest.raises(ConfigError) as err:
        model_args(cfg("dcgan"), (5,), K)
    assert "model.arch=mlp" in str(err.value) and "\n" not in str(err.value)
