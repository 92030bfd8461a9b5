"""GANLoss's D-step skeleton for every registered loss: fused scoring, state, an end-to-end step."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge.config import LossConfig, ModelConfig
from ganforge.errors import GanforgeError
from ganforge.losses import LOSSES, scoring
from ganforge.losses.scoring import couples_samples, score
from ganforge.models import build_models, model_args
from tests.losses.nets import RecordingD, SmallConvD

CONDITIONAL = {"acgan"}  # losses that need a class head and labels
N_CLASSES = 3


def batches(seed: int = 0, n: int = 6):
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 1, 8, 8, generator=g) * 2 - 1
    fake = torch.rand(n, 1, 8, 8, generator=g) * 2 - 1
    y_real = torch.randint(0, N_CLASSES, (n,), generator=g)
    y_fake = torch.randint(0, N_CLASSES, (n,), generator=g)
    return real, y_real, fake, y_fake


def make(name: str, **kw):
    cfg = LossConfig(name=name, **kw)
    loss = LOSSES.get(name)(cfg)
    conditional = name in CONDITIONAL
    torch.manual_seed(1)
    D = SmallConvD(n_classes=N_CLASSES if conditional else 0)
    return loss, D, conditional


def d_step(loss, D, conditional, seed=0):
    real, y_real, fake, y_fake = batches(seed)
    if not conditional:
        y_real = y_fake = None
    torch.manual_seed(2)  # random interpolates / perturbations drawn alike on both paths
    out = loss.discriminator_loss(D, real, y_real, fake, y_fake)
    D.zero_grad()
    out.loss.backward()
    return out, [p.grad.clone() for p in D.parameters()]


@pytest.mark.parametrize("name", LOSSES.names())
def test_fused_forward_gives_the_numbers_of_two_forwards(name, monkeypatch):
    loss, D, conditional = make(name)
    assert not couples_samples(D)
    fused, fused_grads = d_step(loss, D, conditional)
    monkeypatch.setattr(scoring, "couples_samples", lambda discriminator: True)
    loss2, _, _ = make(name)
    apart, apart_grads = d_step(loss2, D, conditional)
    assert fused.loss.item() == pytest.approx(apart.loss.item(), rel=1e-5, abs=1e-6)
    for key, value in apart.stats.items():
        assert float(fused.stats[key]) == pytest.approx(float(value), rel=1e-5, abs=1e-6), key
    for a, b in zip(fused_grads, apart_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_score_fuses_only_without_batch_norm():
    real, _, fake, _ = batches()
    D = RecordingD()
    out_real, out_fake = score(D, [real, fake], [None, None])
    assert [c.shape[0] for c in D.calls] == [12]  # one forward over real + fake
    assert out_real.adv.tolist() == real.flatten(1)[:, 0].tolist()
    assert out_fake.adv.tolist() == fake.flatten(1)[:, 0].tolist()
    D_bn = RecordingD(batch_norm=True)
    score(D_bn, [real, fake], [None, None])
    assert [c.shape[0] for c in D_bn.calls] == [6, 6]  # BatchNorm: real and fake apart
    assert torch.equal(D_bn.calls[0], real) and torch.equal(D_bn.calls[1], fake)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_d_step_scores_real_and_fake_once_each(batch_norm):
    real, _, fake, _ = batches()
    D = RecordingD(batch_norm=batch_norm)
    LOSSES.get("bce")(LossConfig()).discriminator_loss(D, real, None, fake, None)
    assert [c.shape[0] for c in D.calls] == ([6, 6] if batch_norm else [12])


def test_split_keeps_class_logits_and_features_with_their_batch():
    real, y_real, fake, y_fake = batches()
    D = SmallConvD(n_classes=N_CLASSES)
    fused = score(D, [real, fake], [y_real, y_fake])
    for out, x, y in zip(fused, (real, fake), (y_real, y_fake)):
        alone = D(x, y)
        for field in ("adv", "cls", "features"):
            torch.testing.assert_close(getattr(out, field), getattr(alone, field))


def aids_on(**extra):
    return dict(r1_gamma=0.5, r2_gamma=0.25, reg_every=2,
                augment=["translation", "cutout", "color"], ada_target=0.6, ada_interval=2,
                lecam_weight=0.3, instance_noise=0.1, instance_noise_steps=10, **extra)


def tiny_models(conditional: bool):
    mcfg = ModelConfig(arch="dcgan", g_width=4, d_width=4, d_norm="none", z_dim=8,
                       conditional=conditional, d_label="classifier" if conditional else "input")
    return build_models("dcgan", model_args(mcfg, (1, 28, 28), 10 if conditional else 0))


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_trains_a_ganforge_model_with_every_aid(name):
    """End to end: a tiny DCGAN from the model registry, all aids on, D and G backward."""
    torch.manual_seed(0)
    conditional = name in CONDITIONAL
    G, D = tiny_models(conditional)
    loss = LOSSES.get(name)(LossConfig(name=name, **aids_on()))
    y = torch.randint(0, 10, (4,)) if conditional else None
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    for _ in range(3):
        fake = G(torch.randn(4, 8), y)
        out_d = loss.discriminator_loss(D, real, y, fake.detach(), y)
        D.zero_grad()
        out_d.loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
        loss.after_discriminator_step(D)
        D.requires_grad_(False)
        out_g = loss.generator_loss(D, fake, y)
        out_g.loss.backward()
        D.requires_grad_(True)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())
    assert loss.d_steps == 3
    for key in ("Loss/D", "Aug/p", "Aug/r_t", "Noise/sigma", "Loss/D/lecam", "LeCam/ema_real"):
        assert key in out_d.stats, key
    assert "Loss/D/r1" in out_d.stats and "Loss/D/r2" in out_d.stats  # step index 2: due
    assert "Loss/G" in out_g.stats


@pytest.mark.parametrize("name", LOSSES.names())
def test_state_round_trip_resumes_the_same_step(name):
    loss, D, conditional = make(name, **aids_on())
    for seed in range(3):
        d_step(loss, D, conditional, seed)
    state = json.loads(json.dumps(loss.state_dict()))  # plain JSON
    assert state["d_steps"] == 3
    assert set(state["aids"]) == {"augment", "instance_noise", "lecam", "r1r2"}
    resumed, _, _ = make(name, **aids_on())
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state
    torch.manual_seed(5)
    a, _ = d_step(loss, D, conditional, seed=7)
    torch.manual_seed(5)
    b, _ = d_step(resumed, D, conditional, seed=7)
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)
    assert loss.state_dict() == resumed.state_dict()


def test_old_checkpoints_without_loss_state_keep_defaults():
    loss = LOSSES.get("bce")(LossConfig(lecam_weight=0.1))
    loss.load_state_dict({})
    assert loss.state_dict() == {"d_steps": 0, "aids": {"lecam": {"ema_real": 0.0, "ema_fake": 0.0,
                                                                  "updates": 0}}}


def test_losses_without_aids_keep_an_empty_state():
    loss = LOSSES.get("hinge")(LossConfig(name="hinge"))
    assert loss.aids == {} and loss.state_dict() == {"d_steps": 0, "aids": {}}


def test_relativistic_g_step_needs_a_d_step_first():
    loss = LOSSES.get("rpgan")(LossConfig(name="rpgan"))
    with pytest.raises(GanforgeError, match="discriminator step"):
        loss.generator_loss(RecordingD(), torch.zeros(2, 1, 8, 8), None)
