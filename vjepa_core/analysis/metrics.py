"""Classification metrics from per-video probabilities, shaped as warehouse rows.

Input: probs [videos, classes], labels [videos] (class indices), class names, video paths.
Output: a summary dict (accuracy, macro-F1, loss) and `class_metrics`, `confusion` and
`predictions` rows exactly as the warehouse tables hold them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class SplitReport:
    summary: dict[str, float]
    class_metrics: list[dict]
    confusion: list[dict]
    predictions: list[dict]


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, preds), 1)
    return matrix


def per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class; 0 where a ratio has no denominator."""
    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(0), matrix.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def split_report(split: str, probs: np.ndarray, labels: np.ndarray, *, classes: Sequence[str],
                 videos: Sequence[str], loss: float) -> SplitReport:
    preds = probs.argmax(1)
    matrix = confusion_matrix(labels, preds, len(classes))
    precision, recall, f1, support = per_class(matrix)
    present = support > 0  # macro-F1 over the classes this split has
    summary = {
        "accuracy": float((preds == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "loss": loss,
    }
    class_rows = [{"split": split, "class_name": name, "precision": float(precision[i]),
                   "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
                  for i, name in enumerate(classes)]
    confusion_rows = [{"split": split, "true_class": classes[t], "pred_class": classes[p],
                       "count": int(matrix[t, p])}
                      for t in range(len(classes)) for p in range(len(classes)) if matrix[t, p]]
    prediction_rows = [{"split": split, "video": video, "true_class": classes[labels[i]],
                        "pred_class": classes[preds[i]], "confidence": float(probs[i, preds[i]]),
                        "correct": bool(preds[i] == labels[i]),
                        "probs": {c: round(float(probs[i, j]), 6) for j, c in enumerate(classes)}}
                       for i, video in enumerate(videos)]
    return SplitReport(summary, class_rows, confusion_rows, prediction_rows)
