"""Build the evaluator that ships inside the package: ``digits-lenet``, for the embedded digits.

Run from the repository root (about 3 minutes on a 2-core CPU)::

    .venv/bin/python benchmarks/ship_digits_evaluator.py

Why shipped and not trained on first use: the quick start (``make demo``) should end with label
accuracy and FID without an extra command and without minutes of evaluator training, and every
user's numbers should come from the same evaluator. The recipe is ``ganforge train-evaluator``'s
(recipe v2: the corruption mix, a twin net) on the 4,000 embedded training digits, with the
1,000 test digits held out, at width 8 (8/16/32 channels; a quarter of ``mnist-lenet``'s
parameters), and the weights are stored as float16: both nets fit in well under a megabyte. The
JSON also records both nets' accuracy on the 1,000 test digits with the stored float16 weights.

Writes ``src/ganforge/metrics/evaluators/digits-lenet.{safetensors,json}``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
WIDTH = 8
GENERATED = ("format_version", "kind", "nets", "weights_dtype", "tensors_file", "sha256",
             "ganforge_version", "torch_version", "date")


def main() -> int:
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from ganforge.metrics.domain_evaluator import DomainEvaluator
    from ganforge.metrics.evaluator import train_evaluator
    from ganforge.metrics.evaluator_files import save_evaluator
    from ganforge.metrics.extractors import SHIPPED_DIR

    torch.set_num_threads(2)
    data_cfg = DataConfig(name="digits", split="train")
    with tempfile.TemporaryDirectory() as tmp:
        report = train_evaluator(data_cfg, out_path=str(Path(tmp) / "digits-lenet.safetensors"),
                                 width=WIDTH, seed=0)
        trained = DomainEvaluator(report["json"])
        meta = {k: v for k, v in trained.meta.items() if k not in GENERATED}
        SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
        target = SHIPPED_DIR / "digits-lenet.safetensors"
        nets = {"primary": trained.model, "twin": trained.twin}
        save_evaluator(nets, target, meta, half=True)
        # The stored float16 weights, measured on the held-out test digits; the same weights
        # are written again with that measurement in the JSON (the checksum does not change).
        shipped = DomainEvaluator(target.with_suffix(".json"))
        test = build_dataset(DataConfig(name="digits", split="test"))
        _, logits = shipped.features_and_logits(test.x)
        accuracy = float((logits.argmax(1) == test.y).float().mean())
        twin = float((shipped.twin_logits(test.x).argmax(1) == test.y).float().mean())
        meta["float16_test_accuracy"] = {"primary": accuracy, "twin": twin}
        save_evaluator({"primary": shipped.model, "twin": shipped.twin}, target, meta, half=True)
    print(f"trained (float32): held-out {report['heldout_accuracy']:.4f}; stored (float16) on "
          f"the 1,000 test digits: {accuracy:.4f}, twin {twin:.4f}")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
