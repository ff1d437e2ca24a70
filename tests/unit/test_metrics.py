"""Metrics against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from vjepa_core.analysis.metrics import split_report
from vjepa_core.training.loop import lr_factor, scores_from_views


def test_split_report_numbers() -> None:
    # 4 videos, 3 classes; truth a, a, b, c; predicted a, b, b, b.
    probs = np.array([[.8, .1, .1], [.3, .6, .1], [.1, .7, .2], [.2, .5, .3]])
    labels = np.array([0, 0, 1, 2])
    report = split_report("test", probs, labels, classes=["a", "b", "c"], videos=["v0", "v1", "v2", "v3"],
                          loss=0.5)
    assert report.summary["accuracy"] == 0.5
    rows = {r["class_name"]: r for r in report.class_metrics}
    assert rows["a"]["precision"] == 1.0 and rows["a"]["recall"] == 0.5
    assert rows["b"]["precision"] == pytest.approx(1 / 3) and rows["b"]["recall"] == 1.0
    assert rows["c"]["f1"] == 0.0 and rows["c"]["support"] == 1
    f1_a, f1_b = 2 * 0.5 / 1.5, 2 * (1 / 3) / (4 / 3)
    assert report.summary["macro_f1"] == pytest.approx((f1_a + f1_b + 0) / 3)
    cells = {(r["true_class"], r["pred_class"]): r["count"] for r in report.confusion}
    assert cells == {("a", "a"): 1, ("a", "b"): 1, ("b", "b"): 1, ("c", "b"): 1}
    assert report.predictions[1] == {"split": "test", "video": "v1", "true_class": "a", "pred_class": "b",
                                     "confidence": 0.6, "correct": False,
                                     "probs": {"a": 0.3, "b": 0.6, "c": 0.1}}


def test_views_are_averaged_per_video() -> None:
    probs = np.array([[.9, .1], [.3, .7], [.2, .8]])
    scores = scores_from_views(probs, labels=np.array([0, 0, 1]), videos=np.array([0, 0, 1]))
    np.testing.assert_allclose(scores.probs, [[.6, .4], [.2, .8]])
    assert scores.accuracy == 1.0
    assert scores.loss == pytest.approx(-(np.log(.6) + np.log(.8)) / 2)


def test_lr_schedule_warmup_then_cosine() -> None:
    factors = [lr_factor(s, 10, warmup_steps=2, schedule="cosine") for s in range(10)]
    assert factors[0] == 0.5 and factors[1] == 1.0 and factors[2] == 1.0
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))
    assert factors[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 7 / 8)))
    assert lr_factor(5, 10, warmup_steps=0, schedule="constant") == 1.0
