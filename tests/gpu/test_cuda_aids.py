"""The convergence aids on a CUDA device: the zero-centred penalties under fp16/bf16 autocast,
and the aided presets (R3GAN with DiffAugment under ADA, LeCam, instance noise, an EMA by
half-life; ACGAN with a real-only class head) training under mixed precision.

Skipped without CUDA (CI has no GPU); on a GPU machine ``python -m pytest tests/gpu``.

Why these need a GPU: on the CPU autocast runs bf16 only and no gradient underflows, so the
fp32 path of the penalties (squared fp16 gradients of 1e-4 and below flush to zero) and the fp16
loss scalers around lazily added penalty terms are exercised only here.
"""

from __future__ import annotations

import json

import pytest
import torch

from ganforge import api
from ganforge.config import resolve
from ganforge.losses.aids.zero_centred import zero_centred_penalty
from ganforge.losses.penalties import input_gradients
from ganforge.models import MODELS, build_models
from ganforge.run import checkpoint as ckpt
from ganforge.training.step.loop import Trainer
from ganforge.training.step.runner import LossView
from tests.gpu.test_cuda import SMALL_CONV, all_finite, on_gpu

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# Every aid at once, with ADA moving p at every D step so that its update runs in 20 steps.
ALL_AIDS = ["loss.augment=[translation,cutout]", "loss.ada_target=0.6", "loss.ada_interval=1",
            "loss.ada_speed=50", "loss.lecam_weight=0.3", "loss.instance_noise=0.1",
            "loss.instance_noise_steps=10", "train.ema=0", "train.ema_start=0",
            "train.ema_half_life=500", "train.ema_rampup=0.05"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_zero_centred_penalties_under_autocast_equal_fp32(dtype):
    cfg = resolve("r3gan-mnist", overrides=on_gpu(1) + SMALL_CONV)
    args = MODELS.get(cfg.model.arch).kwargs(cfg.model, (1, 28, 28), 0)
    D = build_models(cfg.model.arch, args)[1].cuda()
    torch.manual_seed(0)
    real = torch.rand(16, 1, 28, 28, device="cuda") * 2 - 1
    fake = torch.randn(16, 1, 28, 28, device="cuda").tanh()
    benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, False
    try:  # the same cuDNN algorithm for both calls
        want = input_gradients(LossView(D), [real, fake], [None, None])
        with torch.autocast("cuda", dtype=dtype):
            got = input_gradients(LossView(D), [real, fake], [None, None])
    finally:
        torch.backends.cudnn.benchmark = benchmark
    for g, w in zip(got, want):
        assert g.dtype == torch.float32 and g.shape == (16, 1, 28, 28)
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7)
        penalty = zero_centred_penalty(g, 0.3)
        assert torch.isfinite(penalty) and penalty > 0  # nothing flushed to zero
        torch.testing.assert_close(penalty, zero_centred_penalty(w, 0.3), rtol=1e-5, atol=0)
    # The penalty is differentiable w.r.t. D's weights (create_graph), also under autocast; the
    # output bias drops out of ∇ₓD, so not every parameter gets a gradient.
    zero_centred_penalty(got[0], 0.3).backward()
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert len(grads) >= 2 and all(torch.isfinite(g).all() for g in grads)
    first = next(m.weight for m in D.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_every_aid_trains_under_mixed_precision(tmp_path, amp):
    run = tmp_path / "run"
    Trainer(resolve("r3gan-mnist", overrides=on_gpu(20) + SMALL_CONV + ALL_AIDS
                    + [f"train.amp={amp}"]), run, log=lambda m: None).fit()
    records = all_finite(run)
    assert records[-1]["step"] == 20
    assert not (run / "nonfinite.json").exists()
    keys = set().union(*records)
    assert {"Loss/D/r1", "Loss/D/r2", "Loss/D/lecam", "Aug/p"} <= keys
    r1 = [r["Loss/D/r1"] for r in records if "Loss/D/r1" in r]
    assert r1 and all(v > 0 for v in r1)  # computed in fp32: never flushed to 0
    p = [r["Aug/p"] for r in records if "Aug/p" in r]
    assert len(set(p)) > 1 and all(0.0 <= v <= 1.0 for v in p)  # ADA moved p
    meta = json.loads(ckpt.checkpoint_paths(run, 20)[1].read_text())
    assert set(meta["precision"]["scalers"]) == ({"G", "D"} if amp == "fp16" else set())
    images = api.load_run(run, device="cpu").generate(n=8)  # the EMA G, read on the CPU
    assert images.shape == (8, 1, 28, 28) and torch.isfinite(images).all()


def test_acgan_with_a_real_only_class_head_trains_under_bf16(tmp_path):
    """acgan-kmnist-tuned's recipe on labelled synthetic images: the held-out fake class loss
    is logged, G's samples for a class come back on the CPU."""
    run = tmp_path / "run"
    Trainer(resolve("acgan-kmnist-tuned", overrides=on_gpu(15) + ["train.amp=bf16"]), run,
            log=lambda m: None).fit()
    records = all_finite(run)
    assert records[-1]["step"] == 15
    keys = set().union(*records)
    assert {"Loss/D/class_real", "Loss/D/class_fake_heldout"} <= keys
    loaded = api.load_run(run, device="cpu")
    images = loaded.generate(labels=[0, 3, 3, 9])
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()
