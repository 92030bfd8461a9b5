"""One-line summaries of a metric result: per-class accuracies and the protocol."""

from __future__ import annotations

from ganforge.metrics.base import per_class_line, protocol_line


def test_per_class_line_uses_class_names_and_marks_missing_classes():
    details = {"per_class": [1.0, 0.694, None], "class_names": ["zero", "one", "two"]}
    assert per_class_line(details) == "per class: zero 1.00 · one 0.69 · two –"
    assert per_class_line({"per_class": [0.5, 0.25]}) == "per class: 0 0.50 · 1 0.25"
    assert per_class_line({"per_class": [0.5], "class_names": ["a", "b"]}) == "per class: 0 0.50"
    assert per_class_line({"kid_std": 0.1}) is None


def test_protocol_line_says_samples_real_set_and_evaluator():
    protocol = {"metric": "fid", "n_fake": 10000, "n_real": 1000, "extractor": "digits-lenet",
                "extractor_recipe": 2, "reference": {"dataset": "digits", "split": "test"}}
    assert protocol_line(protocol) == \
        "10,000 samples vs 1,000 real (digits test split), digits-lenet recipe v2"
    assert protocol_line({"metric": "label-acc", "n_fake": 500, "extractor": "x"}) == \
        "500 samples, x"
    assert protocol_line({"metric": "fid"}) is None
