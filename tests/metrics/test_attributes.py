"""Attribute evaluators and attribute accuracy: the multi-label loss on fixed tensors, the
per-attribute and balanced accuracy formulas, the attribute IS, a planted attribute flip (with a
reading evaluator and with one trained on planted attributes), the held-out real ceiling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.errors import ConfigError
from ganforge.metrics import METRICS
from ganforge.metrics.attributes import (attribute_accuracy, attribute_inception_score,
                                         heldout_attributes)
from ganforge.metrics.base import HIGHER_IS_BETTER, FeatureExtractor
from ganforge.metrics.context import EvalContext
from ganforge.metrics.evaluator import DomainEvaluator, train_evaluator
from ganforge.metrics.evaluator_tasks import (AttributeTask, attribute_rates, balanced_bce,
                                              balanced_pos_weight, random_split)
from tests.data.conftest import fake_celeba  # noqa: F401  (fixture)

LN2, LN3 = math.log(2), math.log(3)


# ------------------------------------------------------------------------------ the loss

def test_multi_label_loss_on_fixed_tensors_is_exact():
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # -log s(0) = ln 2; -log(1 - s(ln 3)) = ln 4; -log s(ln 3) = ln 4/3.
    plain = balanced_bce(logits, y)
    assert plain.item() == pytest.approx((LN2 + 2 * LN2 + (2 * LN2 - LN3) + LN2) / 4, abs=1e-7)
    weighted = balanced_bce(logits, y, torch.tensor([2.0, 3.0]))  # positives only are weighted
    assert weighted.item() == pytest.approx(
        (2 * LN2 + 2 * LN2 + 2 * (2 * LN2 - LN3) + 3 * LN2) / 4, abs=1e-7)


def test_the_attribute_task_weighs_positives_by_the_training_balance():
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    assert balanced_pos_weight(y).tolist() == [3.0, 3.0, 1.0]  # no negatives: weight 1
    rare = torch.zeros(200, 2)
    rare[0, 0] = 1
    rare[:199, 1] = 1
    assert balanced_pos_weight(rare).tolist() == pytest.approx([50.0, 1 / 50])  # clamped
    task = AttributeTask()
    task.prepare(y)
    logits = torch.tensor([[0.0, 0.0, 0.0]])
    # Row [1, 0, 1] at logit 0: 3 ln 2 (weight 3) + ln 2 + 1 * ln 2, over 3 entries.
    loss = task.loss(logits, torch.tensor([[1.0, 0.0, 1.0]]))
    assert loss.item() == pytest.approx(5 * LN2 / 3, abs=1e-7)
    assert task.predict(torch.tensor([[0.1, -0.1, 0.0]])).tolist() == [[1.0, 0.0, 0.0]]


# ------------------------------------------------------------------------------ formulas

def test_per_attribute_and_balanced_accuracy_on_planted_tensors():
    rows = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 1]]).float()
    pred = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 0]]).float()
    rates = attribute_rates(pred, rows)
    # Attribute 0: TP 1 of 2 positives, TN 2 of 3 negatives.
    assert rates["accuracy"].tolist() == pytest.approx([3 / 5, 4 / 5, 3 / 5])
    assert rates["tpr"][0].item() == pytest.approx(1 / 2)
    assert rates["tnr"][0].item() == pytest.approx(2 / 3)
    assert rates["balanced"][0].item() == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert math.isnan(rates["tpr"][1].item()) and math.isnan(rates["balanced"][1].item())
    assert rates["tnr"][1].item() == pytest.approx(4 / 5)
    assert rates["balanced"][2].item() == pytest.approx((2 / 3 + 1 / 2) / 2)
    out = attribute_accuracy((pred * 2 - 1) * 3, rows)  # logits with the same signs
    assert out["mean_accuracy"] == pytest.approx((3 / 5 + 4 / 5 + 3 / 5) / 3)
    # Attribute 1 has no positives asked for: its balanced accuracy is left out of the mean.
    assert out["mean_balanced"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + (2 / 3 + 1 / 2) / 2) / 2)
    with pytest.raises(ValueError, match="must both be"):
        attribute_rates(pred[:, :2], rows)


def test_attribute_inception_score():
    # Identical predictions: p(y|x) equals the marginal, IS 1.
    same = torch.full((6, 3), 0.7)
    assert attribute_inception_score(same, 2) == pytest.approx((1.0, 0.0))
    # Two attributes, four samples covering the four combinations with certainty: IS -> 4.
    sure = torch.tensor([[40.0, 40.0], [40.0, -40.0], [-40.0, 40.0], [-40.0, -40.0]])
    assert attribute_inception_score(sure, 1)[0] == pytest.approx(4.0, rel=1e-9)
    # p = 3/4 and 1/4 for one attribute: KL to the marginal 1/2 is 3/4 ln 3/2 + 1/4 ln 1/2.
    half = torch.tensor([[LN3], [-LN3]], dtype=torch.float64)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert attribute_inception_score(half, 1)[0] == pytest.approx(math.exp(kl), rel=1e-12)


# ------------------------------------------------------------------------------ planted flips

class PixelReader(FeatureExtractor):
    """An attribute evaluator that reads attribute k from pixel k of the first row (1 x 8 x 8
    images): bright means present. Its features are the pixels."""

    name, checksum, resize_method = "pixel-reader", "0" * 64, "none"
    input_shape, n_classes, feature_dim, multi_label = (1, 8, 8), 8, 64, True
    class_names = [f"attr-{k}" for k in range(8)]
    recipe_version = 2
    meta = {"heldout_accuracy": 1.0, "heldout_balanced_accuracy": 1.0,
            "per_attribute": {f"attr-{k}": {"accuracy": 1.0, "balanced_accuracy": 1.0}
                              for k in range(8)}}

    def prepare(self, images):
        return images.float()

    def forward(self, batch):
        return batch.flatten(1), batch[:, 0, 0, :8] * 10


def pixel_images(rows: torch.Tensor) -> torch.Tensor:
    """(N, 1, 8, 8) uint8 images showing ``rows`` (N, 8) in their first pixel row."""
    x = torch.full((len(rows), 1, 8, 8), 60, dtype=torch.uint8)
    x[:, 0, 0, :] = torch.where(rows > 0.5, 220, 30).to(torch.uint8)
    return x


def test_a_planted_attribute_flip_is_detected():
    rows = (torch.rand(400, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    shown = rows.clone()
    shown[:, 5] = 1 - shown[:, 5]  # every sample shows attribute 5 inverted
    ctx = EvalContext(pixel_images(shown), rows, None, PixelReader(), log=lambda m: None)
    result = METRICS.get("attr-acc")(ctx)
    per = result.details["per_attribute"]
    assert per["attr-5"]["accuracy"] == 0.0 and per["attr-5"]["balanced_accuracy"] == 0.0
    assert all(per[f"attr-{k}"]["accuracy"] == 1.0 for k in range(8) if k != 5)
    assert result.value == pytest.approx(7 / 8)  # mean balanced accuracy
    assert result.details["mean_accuracy"] == pytest.approx(7 / 8)
    assert result.details["worst_attribute"] == "attr-5"
    assert result.details["real_balanced"] == 1.0  # the ceiling: the evaluator's own report
    assert result.name == "attracc400_pixel-reader" and "attr-acc" in HIGHER_IS_BETTER
    # Faithful samples score 1 on every attribute.
    ctx = EvalContext(pixel_images(rows), rows, None, PixelReader(), log=lambda m: None)
    assert METRICS.get("attr-acc")(ctx).value == 1.0


def test_attr_acc_refuses_what_it_cannot_read():
    rows = torch.ones(10, 8)
    x = pixel_images(rows)
    with pytest.raises(ConfigError, match="attribute rows"):
        METRICS.get("attr-acc")(EvalContext(x, torch.arange(10), None, PixelReader()))
    with pytest.raises(ConfigError, match="0/1 attribute rows"):
        METRICS.get("attr-acc")(EvalContext(x, rows * 0.5, None, PixelReader()))
    with pytest.raises(ConfigError, match="must agree"):
        METRICS.get("attr-acc")(EvalContext(x, rows[:, :4], None, PixelReader()))
    plain = PixelReader()
    plain.multi_label = False
    with pytest.raises(ConfigError, match="needs an attribute evaluator"):
        METRICS.get("attr-acc")(EvalContext(x, rows, None, plain))


# ------------------------------------------------------------------------------ trained evaluator

BLOBS = 4
RATES = (0.5, 0.3, 0.5, 0.12)  # how often each planted attribute is present


def blob_images(rows: np.ndarray, seed: int) -> np.ndarray:
    """(N, 28, 28) uint8: attribute k is a bright blob at the k-th of four corners."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28] + 0.5
    centres = [(7, 7), (7, 21), (21, 7), (21, 21)]
    blobs = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0) for cy, cx in centres])
    x = 20 + 220 * np.einsum("nk,khw->nhw", rows, blobs) + rng.normal(0, 10, (len(rows), 28, 28))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """An attribute evaluator trained (1 epoch) on 600 images of 4 planted attributes."""
    folder = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(1)
    rows = (rng.random((600, BLOBS)) < np.asarray(RATES)).astype(np.float32)
    names = np.asarray([f"blob-{k}" for k in range(BLOBS)])
    np.savez(folder / "blobs.npz", x=blob_images(rows, 2), y=rows, class_names=names)
    cfg = DataConfig(name="arrays", root=str(folder / "blobs.npz"))
    report = train_evaluator(cfg, epochs=2, batch_size=40, width=8, seed=0,
                             out_path=str(folder / "ev"), threads=1, log=lambda line: None)
    return {"report": report, "cfg": cfg, "rows": rows}


def test_an_attribute_evaluator_reports_each_attribute_beside_its_baseline(planted):
    report = planted["report"]
    meta = json.loads(Path(report["json"]).read_text())
    assert meta["task"] == "attributes" and meta["name"] == "arrays-lenet"
    assert meta["arch_kwargs"]["n_classes"] == BLOBS and meta["class_names"][0] == "blob-0"
    assert meta["recipe"]["augment"] == "corruptions"
    assert "hflip" not in meta["recipe"]["mix"]  # corner blobs are not mirror-invariant
    assert "thickness" not in meta["recipe"]["suite"] and "blur" in meta["recipe"]["suite"]
    assert meta["data"]["heldout"] == "train, random 0.2 (seed 0) (120)"
    per = meta["per_attribute"]
    assert set(per) == {f"blob-{k}" for k in range(BLOBS)}
    held = planted["rows"][random_split(600, 0.2, 0)[1].numpy()]
    for k in range(BLOBS):
        r = per[f"blob-{k}"]
        assert r["positive_rate"] == pytest.approx(held[:, k].mean())
        assert r["balanced_accuracy"] == pytest.approx((r["tpr"] + r["tnr"]) / 2)
        assert r["accuracy"] >= 0.9 and r["balanced_accuracy"] >= 0.85
    # The rare attribute's majority baseline is high; balanced accuracy shows the difference.
    assert per["blob-3"]["majority_baseline"] == pytest.approx(1 - held[:, 3].mean())
    assert meta["heldout_balanced_accuracy"] == pytest.approx(
        np.mean([per[n]["balanced_accuracy"] for n in per]))
    assert set(meta["corrupted_balanced_accuracy"]) == set(meta["recipe"]["suite"]) | {"mean"}
    assert meta["twin"]["data"]["heldout"] == "train, random 0.2 (seed 1) (120)"
    ev = DomainEvaluator(report["path"])
    assert ev.multi_label and ev.n_classes == BLOBS
    assert ev.provenance()["extractor_task"] == "attributes"


def test_a_trained_evaluator_detects_a_planted_flip_against_the_real_ceiling(planted):
    ev = DomainEvaluator(planted["report"]["path"])
    rng = np.random.default_rng(5)
    rows = (rng.random((300, BLOBS)) < np.asarray(RATES)).astype(np.float32)
    shown = rows.copy()
    shown[:, 1] = 1 - shown[:, 1]
    samples = torch.from_numpy(blob_images(shown, 6)).unsqueeze(1)
    ctx = EvalContext(samples, torch.from_numpy(rows), planted["cfg"], ev, log=lambda m: None)
    result = METRICS.get("attr-acc")(ctx)
    per = result.details["per_attribute"]
    assert per["blob-1"]["accuracy"] <= 0.1 and per["blob-1"]["balanced_accuracy"] <= 0.1
    assert min(per[f"blob-{k}"]["accuracy"] for k in (0, 2, 3)) >= 0.9
    # The ceiling: the same evaluator on the real images it held out.
    assert result.details["real_source"].startswith("the evaluator's held-out part")
    assert result.details["real_balanced"] >= 0.85
    assert result.details["twin_balanced"] is not None
    assert 0 <= result.details["disagreement"] <= 0.2


def test_heldout_attributes_are_the_evaluators_own_held_out_images(planted):
    ev = DomainEvaluator(planted["report"]["path"])
    x, rows, note = heldout_attributes(ev, planted["cfg"])
    data = build_dataset(planted["cfg"])
    index = random_split(len(data), 0.2, 0)[1]
    assert torch.equal(x, data.x[index]) and torch.equal(rows, data.y[index])
    assert note == "the evaluator's held-out part of the train split, 120 images"
    x, _, note = heldout_attributes(ev, planted["cfg"], n=50)
    assert len(x) == 50 and note.endswith("50 images")


# ------------------------------------------------------------------------------ real plumbing

def test_celeba_evaluator_and_attr_acc_in_loop_and_in_evaluate(tmp_path, fake_celeba,
                                                                monkeypatch):
    """On a tiny fake CelebA: train-evaluator learns the 40 attributes (with flips), attr-acc
    runs in-loop and in ``ganforge evaluate``, and the ceiling uses the held-out faces."""
    from ganforge import api
    from ganforge.metrics.evaluate import evaluate
    from tests.conftest import fast_overrides

    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))
    fake_celeba(tmp_path / "data", n=20)
    # Like the shared subset: every face in the train partition, no test faces at all.
    part = tmp_path / "data" / "celeba" / "list_eval_partition.txt"
    part.write_text("".join(f"{line.split()[0]} 0\n" for line in part.read_text().splitlines()))
    cfg = DataConfig(name="celeba", root=str(tmp_path / "data"), download=False, image_size=16)
    lines: list[str] = []
    report = train_evaluator(cfg, epochs=1, batch_size=8, width=4, out_path=str(tmp_path / "ev"),
                             threads=1, log=lines.append)
    assert any("learning its 40 attributes" in line for line in lines)
    meta = json.loads(Path(report["json"]).read_text())
    assert meta["task"] == "attributes" and meta["data"]["labels"] == "attributes"
    assert meta["recipe"]["mix"]["hflip"] == 0.5  # faces are mirror-invariant
    assert meta["data"]["heldout"] == "train, random 0.2 (seed 0) (4)"
    assert any("test split unavailable" in line for line in lines)
    assert len(meta["per_attribute"]) == 40

    overrides = fast_overrides(2, batch=4) + [
        f"data.root={tmp_path / 'data'}", "data.download=false", "data.image_size=16",
        "model.g_width=4", "model.d_width=4", "eval.every=1", "eval.samples=16",
        "eval.metrics=[attr-acc]", f'eval.extractor="{report["path"]}"']
    run = api.train("cdcgan-celeba64-attributes", overrides=overrides,
                    out=str(tmp_path / "run"), log=lambda m: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").open()]
    values = [r["Metrics/attr-acc"] for r in records if "Metrics/attr-acc" in r]
    assert len(values) == 2 and all(0 <= v <= 1 for v in values)
    assert any("Metrics/attr-acc/disagreement" in r for r in records)

    ref = DataConfig(name="celeba", root=str(tmp_path / "data"), split="train", image_size=16,
                     labels="attributes", download=False)
    (result,) = evaluate(run.path, ["attr-acc"], report["path"], ref, n_fake=12,
                         log=lambda m: None)
    assert result.name == "attracc12_celeba-lenet"
    assert result.details["real_source"] == ("the evaluator's held-out part of the train "
                                             "split, 4 images")
    assert set(result.details["per_attribute"]) == set(meta["class_names"])
