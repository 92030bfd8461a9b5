"""StatsCollector: exact means, reset, extras, non-finite values, writers, no host syncs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.reporting import ConsoleWriter, StatsCollector


class ListWriter:
    """Records what the collector passes on."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, float]]] = []
        self.closed = False

    def write_scalars(self, step: int, record: dict[str, float]) -> None:
        self.calls.append((step, record))

    def close(self) -> None:
        self.closed = True


def test_means_are_exact_for_floats_tensors_and_mixtures() -> None:
    stats = StatsCollector()
    for v in (1.0, 2.0, 3.0):
        stats.add("Loss/D", v)
    stats.add("Loss/G", torch.tensor([1.0, 2.0, 3.0, 4.0]))  # every element counts
    stats.add("Mixed", 10)
    stats.add("Mixed", torch.tensor(20.0))
    stats.add("Mixed", np.array([30.0, 40.0]))
    stats.add_many({"Prob/D(x)": torch.tensor(0.75), "Prob/D(G(z))": 0.25})
    record = stats.flush(step=7)
    assert record == {
        "Loss/D": 2.0,
        "Loss/G": 2.5,
        "Mixed": 25.0,
        "Prob/D(x)": 0.75,
        "Prob/D(G(z))": 0.25,
    }
    assert all(type(v) is float for v in record.values())
    assert list(record) == ["Loss/D", "Loss/G", "Mixed", "Prob/D(x)", "Prob/D(G(z))"]


def test_batches_of_different_sizes_average_over_elements() -> None:
    stats = StatsCollector()
    stats.add("Loss/D", torch.full((3,), 1.0))
    stats.add("Loss/D", torch.full((1,), 5.0))
    stats.add("Loss/D", torch.empty(0))  # ignored, not a zero
    assert stats.flush(0)["Loss/D"] == 2.0


def test_flush_resets_and_latest_holds_last_record() -> None:
    stats = StatsCollector()
    assert stats.latest == {} and stats.latest_step is None
    stats.add("Loss/D", 4.0)
    stats.add("Loss/G", 1.0)
    first = stats.flush(100)
    assert stats.names == []
    stats.add("Loss/D", 2.0)
    second = stats.flush(200)
    assert first == {"Loss/D": 4.0, "Loss/G": 1.0}
    assert second == {"Loss/D": 2.0}
    assert stats.latest == second and stats.latest_step == 200
    assert stats.flush(300) == {}


def test_extra_values_are_reported_as_given() -> None:
    stats = StatsCollector()
    stats.add("Loss/D", 1.0)
    record = stats.flush(
        5,
        extra={
            "Speed/images_per_s": 812.5,
            "Progress/epoch": 3,
            "Time/elapsed_s": torch.tensor(1.5),
        },
    )
    assert record == {
        "Loss/D": 1.0,
        "Speed/images_per_s": 812.5,
        "Progress/epoch": 3.0,
        "Time/elapsed_s": 1.5,
    }
    with pytest.raises(ValueError):
        stats.flush(6, extra={"bad": torch.ones(2)})


def test_non_finite_values_are_kept() -> None:
    stats = StatsCollector()
    stats.add("Loss/D", 1.0)
    stats.add("Loss/D", float("nan"))
    stats.add("Loss/G", torch.tensor([1.0, float("inf")]))
    stats.add("Loss/ok", 3.0)
    record = stats.flush(1)
    assert math.isnan(record["Loss/D"])
    assert record["Loss/G"] == math.inf
    assert record["Loss/ok"] == 3.0


def test_writers_receive_each_record() -> None:
    stats = StatsCollector()
    writer = stats.attach(ListWriter())
    stats.add("Loss/D", 2.0)
    stats.flush(10, extra={"Progress/epoch": 1})
    stats.add("Loss/D", 4.0)
    stats.flush(20)
    assert writer.calls == [(10, {"Loss/D": 2.0, "Progress/epoch": 1.0}), (20, {"Loss/D": 4.0})]
    stats.close()
    assert writer.closed and stats.writers == ()
    with pytest.raises(TypeError):
        stats.attach(object())  # type: ignore[arg-type]


def test_add_does_not_move_tensors_to_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # On CUDA, item()/float()/tolist()/cpu() block until the GPU catches up; add must not call them.
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("add() synchronised with the host")

    stats = StatsCollector()
    loss = (torch.ones(4, requires_grad=True) * 3.0).mean()
    with monkeypatch.context() as m:
        for attr in ("item", "tolist", "cpu", "__float__", "numpy"):
            m.setattr(torch.Tensor, attr, forbidden)
        for _ in range(3):
            stats.add("Loss/D", loss)
            stats.add_many({"Prob/D(x)": torch.tensor([0.5, 1.0])})
    record = stats.flush(3)
    assert record == {"Loss/D": 3.0, "Prob/D(x)": 0.75}


def test_bad_names_and_values_are_rejected() -> None:
    stats = StatsCollector()
    with pytest.raises(ValueError):
        stats.add("", 1.0)
    with pytest.raises(TypeError):
        stats.add("Loss/D", "0.5")  # type: ignore[arg-type]


def test_console_writer_formats_selected_keys() -> None:
    lines: list[str] = []
    writer = ConsoleWriter(keys=["Loss/D", "Loss/G", "missing"], print_fn=lines.append)
    writer.write_scalars(1200, {"Loss/G": 0.70123, "Loss/D": 0.693147, "Other": 1.0})
    assert lines == ["step 1200 | Loss/D 0.6931 | Loss/G 0.7012"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_add_on_cuda_never_synchronises() -> None:
    stats = StatsCollector()
    x = torch.rand(64, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any blocking host<->device op now raises
    try:
        for _ in range(5):
            stats.add("Loss/D", x.mean())
            stats.add("Prob/D(x)", x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    record = stats.flush(1)
    assert record["Loss/D"] == pytest.approx(float(x.mean()), rel=1e-6)
