"""Convergence aids against hand-computed values: R1/R2, lazy scaling, LeCam, noise, ADA."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.config import LossConfig
from ganforge.losses import AIDS, LOSSES
from ganforge.losses.aids.adaptive import P_MAX
from tests.losses.nets import ConstantD, EagerTwin, LinearD, RecordingD

REAL = torch.tensor([[1.0, 0.0], [0.0, 2.0]])   # D = x0 + 2 x1 -> scores 1, 4
FAKE = torch.tensor([[-1.0, 0.0], [0.5, -1.5]])  # scores -1, -2.5
W = [1.0, 2.0]                                   # ‖w‖² = 5


def sp(v: float) -> float:
    return math.log1p(math.exp(v))


@pytest.mark.parametrize("view", ["reuse", "own_forward"])
def test_r1_and_r2_of_a_linear_d(view):
    """∇ₓ(w·x) = w for every sample: R1 = γ₁/2·‖w‖², R2 = γ₂/2·‖w‖², gradient γ·w."""
    loss = LOSSES.get("hinge")(LossConfig(name="hinge", r1_gamma=0.2, r2_gamma=0.4))
    D = LinearD(W)
    view_D = D if view == "reuse" else EagerTwin(D)
    out = loss.discriminator_loss(view_D, REAL, None, FAKE, None)
    assert out.stats["Loss/D/r1"].item() == pytest.approx(0.1 * 5)
    assert out.stats["Loss/D/r2"].item() == pytest.approx(0.2 * 5)
    assert out.loss.item() == pytest.approx(0.0 + 0.5 + 1.0)  # every hinge term is relu(<=0)
    assert out.stats["Loss/D"].item() == pytest.approx(1.5)
    out.loss.backward()
    # hinge terms are all in their flat region; d/dw (γ₁+γ₂)/2 ‖w‖² = (γ₁+γ₂) w
    assert D.w.grad.tolist() == pytest.approx([0.6 * 1.0, 0.6 * 2.0])


def test_r1_is_computed_in_fp32_under_autocast():
    """A bf16 forward would round w = 1.001 to 1; the penalty's own forward runs in fp32."""
    loss = LOSSES.get("wgan")(LossConfig(name="wgan", r1_gamma=2.0))
    D = LinearD([1.001, 1.001])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss.discriminator_loss(D, REAL, None, FAKE, None)
    assert out.stats["Loss/D/r1"].dtype == torch.float32
    assert out.stats["Loss/D/r1"].item() == pytest.approx(2 * 1.001 ** 2, rel=1e-6)


def test_lazy_penalty_every_third_step_scaled_by_three():
    loss = LOSSES.get("wgan")(LossConfig(name="wgan", r1_gamma=0.2, reg_every=3))
    critic = (-1.0 - 2.5) / 2 - (1.0 + 4.0) / 2  # mean fake - mean real
    seen = []
    for _ in range(7):
        out = loss.discriminator_loss(LinearD(W), REAL, None, FAKE, None)
        seen.append((round(out.loss.item() - critic, 6), "Loss/D/r1" in out.stats))
    applied = (round(3 * 0.1 * 5, 6), True)
    skipped = (0.0, False)
    assert seen == [applied, skipped, skipped, applied, skipped, skipped, applied]


def test_rpgan_values():
    loss = LOSSES.get("rpgan")(LossConfig(name="rpgan"))
    D = LinearD(W)
    d = loss.discriminator_loss(D, REAL, None, FAKE, None)
    # pairs (1, -1) and (4, -2.5): softplus(fake - real)
    assert d.loss.item() == pytest.approx((sp(-2.0) + sp(-6.5)) / 2)
    assert d.stats["Critic/real"].item() == pytest.approx(2.5)
    assert d.stats["Critic/fake"].item() == pytest.approx(-1.75)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert d.stats["Prob/D(x)>D(G(z))"].item() == pytest.approx((sig(2.0) + sig(6.5)) / 2)
    fake = FAKE.clone().requires_grad_(True)
    g = loss.generator_loss(D, fake, None)  # paired with the D step's real batch
    assert g.loss.item() == pytest.approx((sp(2.0) + sp(6.5)) / 2)
    g.loss.backward()
    # d/dfake_i softplus(r_i - w·f_i) / 2 = -sigmoid(r_i - f_i) w / 2
    expected = [[-sig(2.0) * w / 2 for w in W], [-sig(6.5) * w / 2 for w in W]]
    torch.testing.assert_close(fake.grad, torch.tensor(expected))


def test_rpgan_refuses_unpaired_batches():
    loss = LOSSES.get("rpgan")(LossConfig(name="rpgan"))
    with pytest.raises(ValueError, match="same size"):
        loss.discriminator_loss(LinearD(W), REAL, None, FAKE[:1], None)


def test_lecam_with_known_anchors():
    loss = LOSSES.get("lsgan")(LossConfig(name="lsgan", lecam_weight=0.3))
    loss.load_state_dict({"aids": {"lecam": {"ema_real": 0.5, "ema_fake": -0.5,
                                             "updates": 1_000_000}}})
    out = loss.discriminator_loss(LinearD(W), REAL, None, FAKE, None)
    # anchors move 1% towards this batch's means (2.5 real, -1.75 fake) before the penalty
    a_real, a_fake = 0.5 + 0.01 * (2.5 - 0.5), -0.5 + 0.01 * (-1.75 + 0.5)
    reg = (((1 - a_fake) ** 2 + (4 - a_fake) ** 2) / 2
           + ((-1 - a_real) ** 2 + (-2.5 - a_real) ** 2) / 2)
    lsgan = 0.5 * (0 + 9) / 2 + 0.5 * (1 + 6.25) / 2
    assert out.stats["LeCam/ema_real"].item() == pytest.approx(a_real)
    assert out.stats["LeCam/ema_fake"].item() == pytest.approx(a_fake)
    assert out.stats["Loss/D/lecam"].item() == pytest.approx(0.3 * reg)
    assert out.loss.item() == pytest.approx(lsgan + 0.3 * reg)


def test_lecam_first_update_sets_the_anchors_to_the_batch_means():
    loss = LOSSES.get("bce")(LossConfig(lecam_weight=1.0))
    out = loss.discriminator_loss(LinearD(W), REAL, None, FAKE, None)
    assert out.stats["LeCam/ema_real"].item() == pytest.approx(2.5)
    assert out.stats["LeCam/ema_fake"].item() == pytest.approx(-1.75)
    reg = ((1 + 1.75) ** 2 + (4 + 1.75) ** 2) / 2 + ((-1 - 2.5) ** 2 + (-2.5 - 2.5) ** 2) / 2
    assert out.stats["Loss/D/lecam"].item() == pytest.approx(reg)
    out = loss.discriminator_loss(LinearD(W), REAL, None, FAKE, None)  # rate (0.01)/(1-0.99²)
    assert loss.state_dict()["aids"]["lecam"] == pytest.approx(
        {"ema_real": 2.5, "ema_fake": -1.75, "updates": 2})


def test_instance_noise_schedule_and_magnitude():
    loss = LOSSES.get("bce")(LossConfig(instance_noise=0.5, instance_noise_steps=4))
    torch.manual_seed(0)
    real, fake = torch.zeros(4000, 1), torch.ones(4000, 1)
    sigmas, stds = [], []
    for _ in range(6):
        D = RecordingD()
        out = loss.discriminator_loss(D, real, None, fake, None)
        sigmas.append(out.stats["Noise/sigma"])
        seen_real, seen_fake = D.calls[0][:4000], D.calls[0][4000:]
        stds.append(((seen_real - real).std().item(), (seen_fake - fake).std().item()))
    assert sigmas == pytest.approx([0.5, 0.375, 0.25, 0.125, 0.0, 0.0])
    for sigma, (s_real, s_fake) in zip(sigmas, stds):
        assert s_real == pytest.approx(sigma, abs=0.02) and s_fake == pytest.approx(sigma, abs=0.02)
    # G's step sees the fakes with the current sigma (0 now) and keeps the gradient path
    fake_g = fake.clone().requires_grad_(True)
    D = RecordingD()
    loss.generator_loss(D, fake_g, None).loss.backward()
    assert torch.equal(D.calls[0], fake) and fake_g.grad.abs().sum() > 0


def ada_loss(**kw):
    cfg = dict(augment=["translation"], ada_target=0.6, ada_interval=4, ada_speed=0.05,
               augment_p=0.5)
    cfg.update(kw)
    return LOSSES.get("bce")(LossConfig(**cfg))


@pytest.mark.parametrize("score, direction", [(5.0, 1), (-5.0, -1), (0.0, -1)])
def test_ada_moves_p_up_when_d_is_over_confident_on_reals(score, direction):
    loss = ada_loss()
    real, fake = torch.zeros(8, 1, 8, 8), torch.zeros(8, 1, 8, 8)
    ps = []
    for _ in range(8):
        out = loss.discriminator_loss(ConstantD(score), real, None, fake, None)
        ps.append(out.stats["Aug/p"])
    step = 0.05 * 32 / 1000  # 4 steps x 8 real images, per 1,000 images
    assert ps[:4] == [0.5] * 4  # p changes only at the end of every 4th D step
    assert ps[4:] == pytest.approx([0.5 + direction * step] * 4)
    assert loss.aids["augment"].p == pytest.approx(0.5 + 2 * direction * step)
    assert out.stats["Aug/r_t"].item() == (1.0 if score > 0 else -1.0 if score < 0 else 0.0)
    assert loss.aids["augment"].r_t == pytest.approx(1.0 if score > 0 else -1.0 if score else 0.0)


def test_ada_clamps_p_and_sums_over_ranks():
    loss = ada_loss(ada_interval=1, ada_speed=100.0)
    seen = []
    loss.set_rank_sum(lambda t: seen.append(t.clone()) or t * 2)  # two identical ranks
    real = torch.zeros(8, 1, 8, 8)
    loss.discriminator_loss(ConstantD(5.0), real, None, real, None)
    assert loss.aids["augment"].p == P_MAX < 1
    assert seen[0].tolist() == [8.0, 8.0]  # (sum of signs, count) handed to the reducer
    loss.discriminator_loss(ConstantD(-5.0), real, None, real, None)
    assert loss.aids["augment"].p == 0.0


def test_ada_uses_each_loss_notion_of_real():
    """LSGAN's boundary is 0.5; a critic's (WGAN, RpGAN) is the fakes' mean score."""
    real_adv, fake_adv = torch.tensor([0.4, 0.6]), torch.tensor([0.0, 2.0])
    signs = {name: LOSSES.get(name)(LossConfig(name=name)).real_signs(real_adv, fake_adv).tolist()
             for name in ("bce", "lsgan", "wgan", "rpgan")}
    assert signs == {"bce": [1.0, 1.0], "lsgan": [-1.0, 1.0], "wgan": [-1.0, -1.0],
                     "rpgan": [-1.0, -1.0]}


def test_aids_registry_and_default_off():
    assert set(AIDS.names()) >= {"augment", "instance_noise", "lecam", "r1r2"}
    for name in AIDS.names():
        assert not AIDS.get(name).enabled(LossConfig()), name


def test_d_steps_count_only_d_steps():
    loss = LOSSES.get("bce")(LossConfig())
    D = LinearD(W)
    loss.discriminator_loss(D, REAL, None, FAKE, None)
    loss.generator_loss(D, FAKE, None)
    assert loss.d_steps == 1


def test_aids_leave_the_variant_formula_alone():
    """bce + LeCam = bce's own value + the LeCam term, on the same scores."""
    plain = LOSSES.get("bce")(LossConfig()).discriminator_loss(LinearD(W), REAL, None, FAKE, None)
    with_lecam = LOSSES.get("bce")(LossConfig(lecam_weight=0.5)).discriminator_loss(
        LinearD(W), REAL, None, FAKE, None)
    bce = (F.binary_cross_entropy_with_logits(torch.tensor([1.0, 4.0]), torch.ones(2))
           + F.binary_cross_entropy_with_logits(torch.tensor([-1.0, -2.5]), torch.zeros(2)))
    assert plain.loss.item() == pytest.approx(bce.item())
    assert with_lecam.loss.item() == pytest.approx(
        bce.item() + with_lecam.stats["Loss/D/lecam"].item())
