"""One rank of the multi-process tests in ``test_distributed.py``.

Run as ``python -m tests.training.world.ddp_worker SCENARIO SPEC_JSON`` with ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set, as torchrun sets them. Each scenario
writes what the test checks to ``SPEC["out"]/rank<R>.json`` (and weights to
``rank<R>_<name>.safetensors``), outside the run folders.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from safetensors.torch import save_file

RANK = int(os.environ.get("RANK", "0"))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def record_writes(root: Path) -> list[str]:
    """Every file-system change this process makes under ``root`` from now on (audit hooks:
    opening for writing, mkdir, rename/replace, remove, truncate, flock)."""
    root_s = str(root.resolve())
    seen: list[str] = []

    def under(path: Any) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(root_s)
        except TypeError:  # file descriptors
            return False

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args and under(args[0]):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (mode is None and isinstance(flags, int) and flags & WRITE_FLAGS)
            if writing:
                seen.append(f"open {args[0]}")
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate", "os.rename",
                       "os.replace", "shutil.copyfile", "shutil.rmtree") and args:
            if any(under(a) for a in args[:2] if isinstance(a, (str, os.PathLike))):
                seen.append(f"{event} {args[0]}")

    sys.addaudithook(hook)
    return seen


def save_modules(path: Path, modules: dict[str, torch.nn.Module]) -> None:
    save_file({f"{name}/{k}": v.detach().cpu().contiguous()
               for name, m in modules.items() for k, v in m.state_dict().items()}, str(path))


def capture_setups() -> list[Any]:
    """The Setup of every Trainer that finishes from now on (its live, unwrapped modules)."""
    from ganforge.training.step.loop import Trainer

    setups: list[Any] = []
    finish = Trainer.finish

    def patched(self: Any, images_per_s: float) -> Any:
        setups.append(self.s)
        return finish(self, images_per_s)

    Trainer.finish = patched  # type: ignore[method-assign]
    return setups


# ---------------------------------------------------------------------------------------------
# D, G and pre-training objectives through DDP against the mean of the ranks' objectives
# ---------------------------------------------------------------------------------------------

def _grads(module: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> list[torch.Tensor]:
    module.zero_grad(set_to_none=True)
    loss_fn().backward()
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for p in module.parameters()]


def _compare(got: list[torch.Tensor], want: list[torch.Tensor]) -> dict[str, float]:
    scale = max(float(w.abs().max()) for w in want)
    return {"max_diff": max(float((g - w).abs().max()) for g, w in zip(got, want)),
            "max_grad": scale}


def phase_gradients(preset: str, overrides: list[str], world: Any) -> dict[str, Any]:
    """Gradients of each phase under DDP vs. the average of every rank's own objective,
    computed here without DDP on the same parameters (DDP must average exactly that)."""
    from ganforge.config import resolve
    from ganforge.training.step.runner import Runner
    from ganforge.training.step.setup import build

    cfg = resolve(preset, overrides=overrides)
    s = build(cfg, world.rank, world.world_size)
    run = Runner(s, world, log=lambda m: None)
    G, D, loss = s.generator, s.discriminator, s.loss
    B, ranks = cfg.train.batch_size, range(world.world_size)
    n_classes = s.noise.n_classes

    def inputs(r: int, k: int) -> tuple[torch.Tensor, Any, torch.Tensor]:
        gen = torch.Generator().manual_seed(1000 * k + r)
        real = torch.rand((B, *s.data.shape), generator=gen) * 2 - 1
        y = torch.randint(0, n_classes, (B,), generator=gen) if n_classes else None
        return real, y, torch.randn(B, cfg.model.z_dim, generator=gen)

    def seeded(r: int, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        torch.manual_seed(77 + r)  # the same penalty points / label noise as rank r drew
        return fn()

    out: dict[str, Any] = {}
    real, y, z = inputs(world.rank, 0)
    D.requires_grad_(True)
    if loss.pretrain_steps:
        got = _grads(D, lambda: seeded(world.rank, lambda: run.pretrain_loss(real, y).loss))
        want = _grads(D, lambda: sum(seeded(r, lambda r=r: loss.pretrain_loss(
            run.view, inputs(r, 0)[0], inputs(r, 0)[1]).loss) for r in ranks) / len(ranks))
        out["pretrain"] = _compare(got, want)
    with torch.no_grad():
        fakes = [G(inputs(r, 1)[2], inputs(r, 1)[1]) for r in ranks]
    got = _grads(D, lambda: seeded(world.rank, lambda: run.discriminator_loss(
        real, y, fakes[world.rank], inputs(world.rank, 1)[1]).loss))
    want = _grads(D, lambda: sum(seeded(r, lambda r=r: loss.discriminator_loss(
        run.view, inputs(r, 0)[0], inputs(r, 0)[1], fakes[r], inputs(r, 1)[1]).loss)
        for r in ranks) / len(ranks))
    out["D"] = _compare(got, want)
    D.requires_grad_(False)
    _, y2, z2 = inputs(world.rank, 2)
    got = _grads(G, lambda: seeded(world.rank, lambda: run.generator_loss(
        run.generate(z2, y2), y2).loss))
    want = _grads(G, lambda: sum(seeded(r, lambda r=r: loss.generator_loss(
        run.view, G(inputs(r, 2)[2], inputs(r, 2)[1]), inputs(r, 2)[1]).loss)
        for r in ranks) / len(ranks))
    out["G"] = _compare(got, want)
    return out


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

def scenario_suite(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """Phase gradients, one full run (writes recorded), DDP resume and resume across sizes."""
    from ganforge import api
    from ganforge.training.world.ranks import current

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    world = current()
    quiet = (lambda m: None)
    result: dict[str, Any] = {"rank": world.rank, "world_size": world.world_size}
    result["phases"] = {name: phase_gradients(p, o, world)
                        for name, (p, o) in spec["phases"].items()}
    setups = capture_setups()
    writes = record_writes(Path(spec["runs"]))
    train = spec["train"]
    api.train(train["preset"], overrides=train["overrides"], out=train["out"], log=quiet)
    save_modules(out / f"rank{RANK}_train.safetensors",
                 {"G": setups[-1].generator, "D": setups[-1].discriminator})
    res = spec["resume"]
    api.train(res["preset"], overrides=res["overrides"] + ["train.steps=4"], out=res["straight"],
              log=quiet)
    save_modules(out / f"rank{RANK}_straight.safetensors", {"G": setups[-1].generator})
    api.train(res["preset"], overrides=res["overrides"] + ["train.steps=2"], out=res["split"],
              log=quiet)
    api.train(overrides=["train.steps=4"], resume=res["split"], log=quiet)
    save_modules(out / f"rank{RANK}_split.safetensors", {"G": setups[-1].generator})
    api.train(overrides=["train.steps=4"], resume=spec["single"], log=quiet)
    result["single_resumed_step"] = setups[-1].sampler.epoch, setups[-1].sampler.position
    result["writes"] = list(writes)
    dist.destroy_process_group()
    return result


def scenario_fail(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """Rank 1 raises in its third step; ``main`` below exits with the CLI's status."""
    from ganforge.cli import main
    from ganforge.training.step.loop import Trainer

    if RANK == 1:
        step = Trainer.train_step

        def failing(self: Any) -> None:
            if self.step == 2:
                raise RuntimeError("injected failure on rank 1")
            step(self)

        Trainer.train_step = failing  # type: ignore[method-assign]
    code = main(spec["argv"])
    return {"rank": RANK, "code": code}


SCENARIOS = {"suite": scenario_suite, "fail": scenario_fail}

if __name__ == "__main__":
    name, spec_json = sys.argv[1], sys.argv[2]
    spec = json.loads(spec_json)
    out_dir = Path(spec["out"])
    outcome = SCENARIOS[name](spec, out_dir)
    (out_dir / f"rank{RANK}.json").write_text(json.dumps(outcome))
    sys.exit(int(outcome.get("code", 0)))
