"""World.sampler_state: a checkpoint's data position carried across world sizes by batch plans
(no processes: the arithmetic only; test_distributed.py resumes real runs across sizes)."""

from __future__ import annotations

import torch

from ganforge.data import BatchPlan, BatchSampler, TensorData
from ganforge.training.world.ranks import World


def sampler(plan: BatchPlan, n: int = 64) -> BatchSampler:
    data = TensorData(x=torch.zeros(n, 2), y=None, n_classes=0, name="zeros")
    return BatchSampler.from_plan(data, plan, torch.device("cpu"), seed=0)


def state(epoch: int, position: int, batch_size: int, world_size: int) -> dict[str, int]:
    return {"epoch": epoch, "position": position, "seed": 0, "batch_size": batch_size,
            "world_size": world_size, "num_samples": 64}


def test_the_same_world_keeps_the_state_as_it_is():
    saved = state(1, 3, 8, 2)
    assert World().sampler_state(saved, sampler(BatchPlan(8, 2, 1)), print) is saved


def test_another_world_continues_after_the_samples_the_writer_used():
    """One process of batch 8 at position 5 used 40 samples of its epoch; two ranks of batch 8
    (global batch 16) continue at position 40 // 16 = 2."""
    messages: list[str] = []
    got = World().sampler_state(state(0, 5, 8, 1), sampler(BatchPlan(8, 2, 0)), messages.append)
    assert got == state(0, 2, 8, 2)
    assert messages == ["the checkpoint was written by 1 process(es), this run has 2: "
                        "continuing epoch 0 after its first 40 samples"]


def test_a_position_past_the_new_epoch_starts_the_next():
    """Two ranks of batch 4 at position 7 used 56 samples: one process of batch 16 continues
    at 56 // 16 = 3 of its 4 batches. So did one process of batch 8 at position 7; two ranks of
    batch 24 (global 48) have one batch an epoch (32 samples each), and 56 // 48 = 1 batch is
    past it: the next epoch starts."""
    got = World().sampler_state(state(2, 7, 4, 2), sampler(BatchPlan(16)), lambda m: None)
    assert got == state(2, 3, 16, 1)
    got = World().sampler_state(state(2, 7, 8, 1), sampler(BatchPlan(24, 2, 1)), lambda m: None)
    assert got == state(3, 0, 24, 2)
