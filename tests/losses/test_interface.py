"""The loss/runner interface: the phase plan each loss declares, and D as a loss sees it."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import LossConfig
from ganforge.losses import LOSSES
from ganforge.losses.interface import DiscriminatorView, PhasePlan, PlainView, as_view
from ganforge.losses.penalties import input_gradients
from tests.losses.nets import EagerTwin, LinearD, RecordingD


@pytest.mark.parametrize("name,settings,plan", [
    ("bce", {}, PhasePlan(pretrain_steps=0, n_critic=1, reg_every={})),
    ("wgan", {}, PhasePlan(pretrain_steps=0, n_critic=5, reg_every={})),
    ("wgan-gp", {"n_critic": 2}, PhasePlan(pretrain_steps=0, n_critic=2, reg_every={})),
    ("acgan", {"pretrain_steps": 3}, PhasePlan(pretrain_steps=3, n_critic=1, reg_every={})),
    ("rpgan", {"r1_gamma": 0.5, "reg_every": 4},
     PhasePlan(pretrain_steps=0, n_critic=1, reg_every={"r1r2": 4})),
    ("hinge", {"r2_gamma": 0.1}, PhasePlan(pretrain_steps=0, n_critic=1, reg_every={"r1r2": 1})),
    ("lsgan", {"lecam_weight": 0.3}, PhasePlan(pretrain_steps=0, n_critic=1, reg_every={})),
])
def test_each_loss_declares_its_phase_plan(name, settings, plan):
    loss = LOSSES.get(name)(LossConfig(name=name, **settings))
    assert loss.phase_plan() == plan


def test_a_step_consumes_n_critic_global_batches():
    assert PhasePlan(n_critic=5).images_per_step(32) == 160
    assert PhasePlan().images_per_step(64) == 64


@pytest.mark.parametrize("fields", [{"n_critic": 0}, {"pretrain_steps": -1},
                                    {"reg_every": {"r1r2": 0}}])
def test_an_impossible_plan_is_refused(fields):
    with pytest.raises(ValueError, match="invalid phase plan"):
        PhasePlan(**fields)


def test_a_plain_d_becomes_an_eager_view_in_the_callers_precision():
    D = LinearD([1.0, 2.0])
    view = as_view(D)
    assert isinstance(view, PlainView) and view.module is D and view.eager is view
    assert as_view(view) is view  # a view passes as it is
    x = torch.ones(3, 2)
    assert view.full_precision(x) and view.reuses_graph(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not view.full_precision(x) and not view.reuses_graph(x)
    assert view(x).adv.tolist() == [3.0, 3.0, 3.0]


def test_a_view_with_another_eager_twin_never_lends_its_graph():
    D = LinearD([1.0, 2.0])
    view = EagerTwin(D)
    assert isinstance(view, DiscriminatorView)
    assert view.full_precision(torch.ones(1, 2)) and not view.reuses_graph(torch.ones(1, 2))


class CompiledStandIn(PlainView):
    """A view whose own forward runs one D and whose eager twin another, as a compiled D's."""

    def __init__(self, own: RecordingD, eager: RecordingD) -> None:
        super().__init__(own)
        self._twin = PlainView(eager)

    @property
    def eager(self) -> DiscriminatorView:
        return self._twin


def test_a_penalty_of_its_own_runs_the_eager_twin():
    """input_gradients without the scoring outputs runs D again: through the eager twin."""
    own, eager = RecordingD(), RecordingD()
    x = torch.tensor([[2.0, 5.0], [3.0, 7.0]])
    (grad,) = input_gradients(CompiledStandIn(own, eager), [x], [None])
    assert [c.tolist() for c in eager.calls] == [x.tolist()] and own.calls == []
    assert grad.tolist() == [[1.0, 0.0], [1.0, 0.0]]  # d(scale · x0)/dx at scale 1
