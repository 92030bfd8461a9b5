"""The phase runner: each phase trains its own net through one path, the loss sees D as the
runner's view, and the trainer walks the loss's phase plan (pre-training included)."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import resolve
from ganforge.losses.interface import DiscriminatorView
from ganforge.training.step.loop import Trainer
from ganforge.training.step.runner import LossView, Phase, Runner
from ganforge.training.step.setup import build
from ganforge.training.world.ranks import World
from tests.training.step.test_loop import preset_on_generated_data

SMALL_CONV = ["model.g_width=8", "model.d_width=8"]


def runner(preset: str, *extra: str, steps: int = 1) -> tuple[Runner, object]:
    cfg = resolve(preset, overrides=preset_on_generated_data(preset, steps) + SMALL_CONV
                  + list(extra))
    s = build(cfg)
    return Runner(s, World(), log=lambda m: None), s


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if not torch.equal(before[name], p)]


def batch(s) -> tuple[torch.Tensor, ...]:
    real, y_real = s.sampler.next()
    z, y_fake = s.noise(s.batches.per_rank)
    return real, y_real, z, y_fake


def test_each_phase_trains_one_net():
    assert [(phase.value, phase.net) for phase in Phase] == [("pretrain", "D"), ("D", "D"),
                                                             ("G", "G")]


def test_a_d_update_trains_d_alone_and_ends_with_the_losss_hook():
    """WGAN: after the D phase every critic weight is clipped to [-0.01, 0.01]; G is untouched."""
    run, s = runner("wgan-mnist")
    G, D = s.generator, s.discriminator
    g_before, d_before = weights(G), weights(D)
    real, y_real, z, y_fake = batch(s)
    out = run.step(Phase.D, real, y_real, run.generate(z, y_fake).detach(), y_fake)
    assert sorted(out.stats) == ["Critic/W-distance", "Critic/fake", "Critic/real", "Loss/D"]
    assert changed(g_before, G) == []
    # A constant added to every score cancels in E[D(G(z))] - E[D(x)]: the output bias alone
    # gets a zero gradient.
    assert sorted(set(d_before) - set(changed(d_before, D))) == ["head.out.bias"]
    assert all(p.requires_grad for p in D.parameters())
    assert max(float(p.abs().max()) for p in d_before.values()) > 0.01  # initialised wider
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= 0.01


def test_a_g_update_freezes_d():
    run, s = runner("dcgan-mnist")
    G, D = s.generator, s.discriminator
    g_before, d_before = weights(G), weights(D)
    _, _, z, y_fake = batch(s)
    out = run.step(Phase.G, run.generate(z, y_fake), y_fake)
    assert "Loss/G" in out.stats
    assert changed(d_before, D) == [] and not any(p.requires_grad for p in D.parameters())
    assert all(p.grad is None for p in D.parameters())  # the backward skipped D's weights
    assert sorted(changed(g_before, G)) == sorted(g_before)


def test_pretraining_is_a_d_update_of_the_warm_up_objective():
    """ACGAN's pre-training phase equals its warm-up loss on the view, backward and one Adam
    step of D — bit for bit — and leaves the real/fake head, which it never uses, as it was."""
    run, s = runner("acgan-mnist", "loss.pretrain_steps=1")
    _, twin = runner("acgan-mnist", "loss.pretrain_steps=1")  # the same seed: the same weights
    real, y_real = s.sampler.next()
    before = weights(s.discriminator)
    run.step(Phase.PRETRAIN, real, y_real)

    D, opt = twin.discriminator, twin.optimizers["D"]
    opt.zero_grad(set_to_none=True)
    twin.loss.pretrain_loss(LossView(D), real, y_real).loss.backward()
    opt.step()
    for (name, got), want in zip(s.discriminator.named_parameters(), D.parameters()):
        assert torch.equal(got, want), name
    assert sorted(set(before) - set(changed(before, s.discriminator))) == ["head.out.bias",
                                                                         "head.out.weight"]


def test_the_loss_sees_d_in_the_runs_precision():
    run, s = runner("dcgan-mnist")
    x = torch.zeros(2, 1, 28, 28)
    assert isinstance(run.view, DiscriminatorView) and run.view.module is s.discriminator
    assert run.view.eager is run.view and run.view.full_precision(x)
    bf16, _ = runner("dcgan-mnist", "train.amp=bf16")
    assert not bf16.view.full_precision(x) and not bf16.view.reuses_graph(x)


def test_a_compiled_views_eager_twin_runs_d_itself_in_the_same_precision():
    run, s = runner("dcgan-mnist", "train.amp=bf16")
    D = s.discriminator
    view = LossView(D, compiled=lambda x, y: D(x, y), precision=run.precision)
    twin = view.eager
    assert twin is not view and twin is view.eager and twin.eager is twin
    assert twin.discriminator is D and not twin.full_precision(torch.zeros(1))
    assert not view.reuses_graph(torch.zeros(1))


def test_the_trainer_walks_the_phase_plan_and_never_repeats_pre_training(tmp_path, monkeypatch):
    """Two pre-training steps, then two D steps and a G step per step; resumed, only steps.
    Every D update draws a real batch: 64 samples of batch 8 are 8 batches an epoch."""
    phases: list[str] = []
    step = Runner.step

    def recording(self, phase, *batch):
        phases.append(phase.value)
        return step(self, phase, *batch)

    monkeypatch.setattr(Runner, "step", recording)
    base = (preset_on_generated_data("acgan-mnist", 2) + SMALL_CONV
            + ["loss.pretrain_steps=2", "loss.n_critic=2"])
    trainer = Trainer(resolve("acgan-mnist", overrides=base), tmp_path / "run",
                      log=lambda m: None)
    trainer.fit()
    assert phases == ["pretrain", "pretrain", "D", "D", "G", "D", "D", "G"]
    assert (trainer.s.sampler.epoch, trainer.s.sampler.position) == (0, 6)
    phases.clear()
    resumed = Trainer(resolve("acgan-mnist", overrides=base + ["train.steps=3"]),
                      tmp_path / "run", resume=True, log=lambda m: None)
    resumed.fit()
    assert phases == ["D", "D", "G"]
    assert (resumed.s.sampler.epoch, resumed.s.sampler.position) == (1, 0)


@pytest.mark.parametrize("phase,args", [(Phase.PRETRAIN, 2), (Phase.D, 4), (Phase.G, 2)])
def test_every_phase_objective_reaches_the_loss_through_one_path(phase, args):
    """The objective of each phase, as the runner computes it for its update, is the loss's."""
    run, s = runner("acgan-mnist", "loss.pretrain_steps=1")
    real, y_real, z, y_fake = batch(s)
    fake = run.generate(z, y_fake)
    inputs = {Phase.PRETRAIN: (real, y_real), Phase.D: (real, y_real, fake.detach(), y_fake),
              Phase.G: (fake, y_fake)}[phase]
    assert len(inputs) == args
    torch.manual_seed(3)
    got = run.objective(phase, *inputs)
    torch.manual_seed(3)
    want = {Phase.PRETRAIN: s.loss.pretrain_loss, Phase.D: s.loss.discriminator_loss,
            Phase.G: s.loss.generator_loss}[phase](run.view, *inputs)
    assert torch.equal(got.loss, want.loss) and sorted(got.stats) == sorted(want.stats)
