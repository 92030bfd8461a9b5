"""A torchsummary-style layer table built from forward hooks, without the dependency.

Seed 002 prints ``torchsummary.summary`` for both nets; :func:`summarize` gives the same view
(layer, type, output shape, parameters, totals) for any ganforge network, including
discriminators that return a :class:`~ganforge.models.base.DOutput`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn


def _shape_of(value: Any) -> str:
    """Readable shape(s) of a module output: a tensor, a tuple/list, a dataclass or None."""
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    if isinstance(value, (tuple, list)):
        return ", ".join(_shape_of(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [
            f"{f.name}={_shape_of(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        ]
        return ", ".join(parts)
    return type(value).__name__


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _format_count(n: int) -> str:
    return f"{n:,}"


def summarize(module: nn.Module, *example_inputs: Any, max_rows: int = 500) -> str:
    """Run one forward pass and tabulate every leaf layer it went through.

    Rows are the modules without children (plus any module that owns parameters directly), in
    call order; a layer called twice appears twice but its parameters are counted once in the
    totals. The pass runs in eval mode under ``torch.no_grad()`` — so BatchNorm works with a
    batch of one and running statistics are not touched — and every module's train/eval flag is
    restored afterwards.

    Args:
        module: the network, e.g. a Generator or Discriminator.
        *example_inputs: positional inputs of ``module.forward``, e.g. ``z`` of shape (N, Z), or
            ``x`` (N, C, H, W) and ``y`` (N,).
        max_rows: stop listing rows after this many (huge nets); totals stay exact.

    Returns:
        The table as one multi-line string, ending with total / trainable / non-trainable
        parameter counts and the output shape of ``module``.
    """
    names = {m: name or type(module).__name__ for name, m in module.named_modules()}
    rows: list[tuple[str, str, str, int]] = []
    seen: set[nn.Module] = set()

    def hook(m: nn.Module, _inputs: Any, output: Any) -> None:
        # Parameters of a layer reused in one pass are shown on its first call only.
        params = _own_params(m) if m not in seen else 0
        seen.add(m)
        rows.append((names[m], type(m).__name__, _shape_of(output), params))

    handles = []
    for m in module.modules():
        is_leaf = next(iter(m.children()), None) is None
        if (is_leaf or _own_params(m) > 0) and m is not module:
            handles.append(m.register_forward_hook(hook))
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            output = module(*example_inputs)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training

    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    header = ("Layer", "Type", "Output shape", "Params")
    shown = rows[:max_rows]
    table = [header] + [(n, t, s, _format_count(p)) for n, t, s, p in shown]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    rule = "-" * (sum(widths) + 6)

    def line(r: tuple[str, str, str, str]) -> str:
        return f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"

    out = [f"{type(module).__name__}", rule, line(header), rule]
    out += [line(r) for r in table[1:]]
    if len(rows) > max_rows:
        out.append(f"... {len(rows) - max_rows} more rows")
    out += [
        rule,
        f"Total params: {_format_count(total)}",
        f"Trainable params: {_format_count(trainable)}",
        f"Non-trainable params: {_format_count(total - trainable)}",
        f"Output: {_shape_of(output)}",
    ]
    return "\n".join(out)
