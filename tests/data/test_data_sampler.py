"""BatchSampler: shapes and ranges, determinism, exact resume, DDP sharding, error cases."""

from __future__ import annotations

import json

import pytest
import torch

import ganforge.data.sampler as sampler_mod
from ganforge.data import BatchSampler, TensorData
from ganforge.errors import CheckpointError, ConfigError

CPU = torch.device("cpu")


def image_data(n: int = 50, labels: bool = True) -> TensorData:
    """(n, 1, 4, 4) uint8 images whose first pixel encodes the sample index (for identity)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=gen)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    y = torch.arange(n) % 10 if labels else None
    return TensorData(x=x, y=y, n_classes=10 if labels else 0, name="test-images")


def vector_data(n: int = 50) -> TensorData:
    """(n, 2) float32 vectors; column 0 is the sample index."""
    x = torch.stack([torch.arange(n, dtype=torch.float32), torch.randn(n)], dim=1)
    return TensorData(x=x, y=None, n_classes=0, name="test-vectors")


def ids(x: torch.Tensor) -> list[int]:
    """Sample indices of a batch from image_data (raw uint8 recovered) or vector_data."""
    if x.dim() == 4:
        return torch.round((x[:, 0, 0, 0] + 1) * 127.5).long().tolist()
    return x[:, 0].long().tolist()


def take(sampler: BatchSampler, steps: int) -> list[list[int]]:
    return [ids(sampler.next()[0]) for _ in range(steps)]


def test_image_batches_are_float_in_range_with_labels():
    data = image_data()
    sampler = BatchSampler(data, batch_size=8, device=CPU, seed=0)
    x, y = sampler.next()
    assert x.shape == (8, 1, 4, 4) and x.dtype == torch.float32 and x.device == CPU
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert y is not None and y.shape == (8,) and y.dtype == torch.int64
    # The conversion is exactly uint8 / 127.5 - 1 and the labels belong to the same samples.
    idx = torch.tensor(ids(x))
    torch.testing.assert_close(x, data.x[idx].float() / 127.5 - 1, rtol=0, atol=0)
    assert torch.equal(y, data.y[idx])


def test_extreme_pixels_map_to_exactly_minus_one_and_one():
    x = torch.tensor([0, 255] * 4, dtype=torch.uint8).view(8, 1, 1, 1)
    out, y = BatchSampler(TensorData(x, None, 0, "ends"), 8, CPU, seed=0).next()
    assert y is None
    assert sorted(set(out.flatten().tolist())) == [-1.0, 1.0]


def test_vectors_pass_through_unchanged():
    data = vector_data()
    x, y = BatchSampler(data, batch_size=5, device=CPU, seed=0).next()
    assert x.dtype == torch.float32 and y is None
    assert torch.equal(x, data.x[torch.tensor(ids(x))])


def test_epoch_is_a_permutation_and_drops_the_partial_batch():
    sampler = BatchSampler(image_data(50), batch_size=8, device=CPU, seed=3)
    assert sampler.steps_per_epoch == 6
    seen = [i for batch in take(sampler, 6) for i in batch]
    assert len(seen) == len(set(seen)) == 48  # no repeats; the last 2 samples are dropped
    assert sampler.epoch == 1 and sampler.position == 0


def test_position_and_epoch_advance():
    sampler = BatchSampler(image_data(20), batch_size=5, device=CPU, seed=0)
    assert (sampler.epoch, sampler.position) == (0, 0)
    take(sampler, 3)
    assert (sampler.epoch, sampler.position) == (0, 3)
    take(sampler, 2)
    assert (sampler.epoch, sampler.position) == (1, 1)


def test_same_seed_same_batches_and_epochs_differ():
    a = take(BatchSampler(image_data(), 10, CPU, seed=7), 10)
    b = take(BatchSampler(image_data(), 10, CPU, seed=7), 10)
    c = take(BatchSampler(image_data(), 10, CPU, seed=8), 10)
    assert a == b
    assert a != c
    assert a[:5] != a[5:]  # epoch 1 is a fresh permutation, not a replay of epoch 0


@pytest.mark.parametrize("stop", [0, 1, 4, 5, 6, 13])
def test_resume_continues_exactly(stop: int):
    """Stopping after `stop` batches (including at and across epoch ends) and resuming from the
    saved state gives the same stream as never stopping."""
    reference = take(BatchSampler(image_data(), 10, CPU, seed=11), stop + 12)

    first = BatchSampler(image_data(), 10, CPU, seed=11)
    assert take(first, stop) == reference[:stop]
    state = json.loads(json.dumps(first.state_dict()))  # must survive a JSON round trip

    resumed = BatchSampler(image_data(), 10, CPU, seed=11)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.position) == (first.epoch, first.position)
    assert take(resumed, 12) == reference[stop:]


def test_resume_in_ddp_continues_each_rank_exactly():
    reference = take(BatchSampler(vector_data(60), 4, CPU, seed=1, rank=1, world_size=3), 9)
    rank0 = BatchSampler(vector_data(60), 4, CPU, seed=1, rank=0, world_size=3)
    take(rank0, 4)
    rank1 = BatchSampler(vector_data(60), 4, CPU, seed=1, rank=1, world_size=3)
    rank1.load_state_dict(rank0.state_dict())  # rank 0's checkpoint is loaded by every rank
    assert take(rank1, 5) == reference[4:]


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ddp_ranks_get_disjoint_equal_shards(world_size: int):
    n, batch = 50, 3
    per_rank = []
    for rank in range(world_size):
        sampler = BatchSampler(vector_data(n), batch, CPU, seed=5, rank=rank, world_size=world_size)
        steps = sampler.steps_per_epoch
        assert steps == (n // world_size) // batch
        per_rank.append([i for b in take(sampler, steps) for i in b])
    assert len({len(s) for s in per_rank}) == 1  # every rank runs the same number of steps
    union = set().union(*map(set, per_rank))
    assert len(union) == sum(len(s) for s in per_rank)  # pairwise disjoint
    # The shards together are the single-process permutation, dealt out rank::world_size.
    perm = BatchSampler(vector_data(n), batch, CPU, seed=5).permutation(0).tolist()
    for rank, seen in enumerate(per_rank):
        assert seen == perm[rank::world_size][: len(seen)]


def test_too_small_dataset_names_the_batch_size():
    with pytest.raises(ConfigError, match=r"lower train\.batch_size to at most 7"):
        BatchSampler(image_data(7), batch_size=8, device=CPU, seed=0)
    with pytest.raises(ConfigError, match=r"per rank") as info:
        BatchSampler(image_data(20), batch_size=8, device=CPU, seed=0, rank=0, world_size=4)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(rank=2, world_size=2),
                                    dict(world_size=0)])
def test_invalid_arguments(kwargs):
    args = dict(batch_size=4, device=CPU, seed=0) | kwargs
    with pytest.raises(ConfigError):
        BatchSampler(image_data(20), **args)


@pytest.mark.parametrize("change", [dict(seed=1), dict(batch_size=5), dict(world_size=2)])
def test_mismatched_state_is_rejected(change):
    sampler = BatchSampler(image_data(40), 4, CPU, seed=0)
    take(sampler, 2)
    other = BatchSampler(image_data(40), **(dict(batch_size=4, device=CPU, seed=0) | change))
    with pytest.raises(CheckpointError, match="resume with the same"):
        other.load_state_dict(sampler.state_dict())


def test_out_of_range_state_is_rejected():
    sampler = BatchSampler(image_data(40), 4, CPU, seed=0)
    with pytest.raises(CheckpointError, match="out of range"):
        sampler.load_state_dict(sampler.state_dict() | {"position": sampler.steps_per_epoch})


def test_large_dataset_stays_on_host_and_gives_the_same_batches(monkeypatch):
    expected = take(BatchSampler(image_data(), 6, CPU, seed=2), 5)
    monkeypatch.setattr(sampler_mod, "DEVICE_BYTES_LIMIT", 0)
    sampler = BatchSampler(image_data(), 6, CPU, seed=2)
    assert take(sampler, 5) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_match_cpu_batches():
    cuda = torch.device("cuda")
    cpu_sampler = BatchSampler(image_data(), 8, CPU, seed=4)
    cuda_sampler = BatchSampler(image_data(), 8, cuda, seed=4)
    assert cuda_sampler.on_device
    for _ in range(8):
        (xc, yc), (xg, yg) = cpu_sampler.next(), cuda_sampler.next()
        assert xg.device.type == "cuda" and yg.device.type == "cuda"
        # The same images and labels; the GPU's uint8 -> [-1, 1] arithmetic may round the
        # last bit differently (fused multiply-add), far below one grey level (2/255).
        torch.testing.assert_close(xg.cpu(), xc, rtol=0, atol=1e-6)
        assert torch.equal(yc, yg.cpu())


def test_iterator_protocol():
    sampler = BatchSampler(image_data(20), 5, CPU, seed=0)
    batches = [b for _, b in zip(range(3), sampler)]
    assert len(batches) == 3 and sampler.position == 3


def test_state_without_position_is_rejected():
    sampler = BatchSampler(image_data(40), 4, CPU, seed=0)
    with pytest.raises(CheckpointError, match="lacks"):
        sampler.load_state_dict({"seed": 0})
