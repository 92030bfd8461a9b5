"""BatchPlan: the one owner of the batch size, per rank and over all ranks, and its checks."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import BatchPlan, BatchSampler
from ganforge.errors import ConfigError
from tests.data.test_data_sampler import ids, image_data, vector_data

CPU = torch.device("cpu")


def test_global_batch_is_per_rank_times_world_size():
    assert BatchPlan(16).global_batch == 16
    assert BatchPlan(16, world_size=4, rank=3).global_batch == 64
    assert BatchPlan(8, world_size=3).shard_size(100) == 33  # the remainder is left out


@pytest.mark.parametrize("args,message", [
    ((0,), r"train\.batch_size=0 must be positive, e.g\. 64"),
    ((4, 2, 2), r"sampler rank=2, world_size=2 is invalid"),
    ((4, 0, 0), r"sampler rank=0, world_size=0 is invalid"),
])
def test_an_impossible_plan_is_refused(args, message):
    with pytest.raises(ConfigError, match=message):
        BatchPlan(*args)


def test_a_dataset_smaller_than_a_batch_per_rank_is_refused():
    BatchPlan(5, world_size=4).check_data(20, "d")  # exactly one batch per rank
    with pytest.raises(ConfigError) as one:
        BatchPlan(8).check_data(7, "d")
    assert str(one.value) == ("dataset 'd' has 7 samples, fewer than train.batch_size=8; lower "
                              "train.batch_size to at most 7 or use more data")
    with pytest.raises(ConfigError) as ranks:
        BatchPlan(8, world_size=4).check_data(20, "d")
    assert str(ranks.value) == ("dataset 'd' has 20 samples (5 per rank over 4 ranks), fewer "
                                "than train.batch_size=8; lower train.batch_size to at most 5 or "
                                "use more data")


def test_the_sampler_draws_what_its_plan_says():
    plan = BatchPlan(4, world_size=3, rank=1)
    sampler = BatchSampler.from_plan(vector_data(60), plan, CPU, seed=1)
    assert sampler.plan == plan
    assert (sampler.batch_size, sampler.rank, sampler.world_size) == (4, 1, 3)
    assert sampler.steps_per_epoch == 5  # 60 // 3 = 20 samples per rank, 4 per batch
    same = BatchSampler(vector_data(60), 4, CPU, seed=1, rank=1, world_size=3)
    assert ids(sampler.next()[0]) == ids(same.next()[0])
    assert sampler.state_dict() == same.state_dict()


def test_the_sampler_refuses_through_its_plan():
    with pytest.raises(ConfigError, match=r"train\.batch_size=0 must be positive"):
        BatchSampler(image_data(20), 0, CPU, seed=0)
