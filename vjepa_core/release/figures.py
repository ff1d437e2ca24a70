"""The model card's figure: the test confusion matrix as a PNG (matplotlib, no display needed).

In:  `confusion` rows (true_class, pred_class, count) as the warehouse holds them, and the labels in the
     model's order. Out: `confusion_grid(...)` -> int counts [labels, labels] (rows: true class);
     `write_confusion_png(...)` writes the heat map (colour: share of the true class, text: count).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def confusion_grid(confusion: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """Counts [true, predicted] in `labels` order; pairs the warehouse has no row for are 0."""
    index = {label: i for i, label in enumerate(labels)}
    grid = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for row in confusion.itertuples():
        grid[index[row.true_class], index[row.pred_class]] += int(row.count)
    return grid


def write_confusion_png(path: Path, confusion: pd.DataFrame, labels: list[str], *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    from matplotlib import pyplot as plt

    grid = confusion_grid(confusion, labels)
    totals = grid.sum(axis=1, keepdims=True)
    shares = np.divide(grid, totals, out=np.zeros(grid.shape, dtype=np.float64), where=totals > 0)
    size = 1.6 + 0.55 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1.2, size), dpi=100)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (true, pred), count in np.ndenumerate(grid):
        axes.text(pred, true, str(count), ha="center", va="center",
                  color="white" if shares[true, pred] > 0.5 else "black", fontsize=9)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
