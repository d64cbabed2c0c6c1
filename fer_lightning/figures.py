"""Figures that readers of a run look at: readable at a glance, class names on the axes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # runs are headless: training servers, CI, sweeps

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def confusion_matrix_figure(counts: np.ndarray, class_names: Sequence[str], title: str = "Test confusion matrix") -> Figure:
    """Counts beside row-normalised rates (recall per true class on the diagonal)."""
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    for ax, values, label, fmt in ((axes[0], counts, "count", "d"), (axes[1], rates, "fraction of true class", ".2f")):
        image = ax.imshow(values, cmap="Blues")
        ax.set(xticks=range(len(class_names)), yticks=range(len(class_names)),
               xticklabels=class_names, yticklabels=class_names, xlabel="predicted", ylabel="true")
        ax.tick_params(axis="x", labelrotation=45)
        threshold = values.max() / 2 if values.size else 0
        for (row, col), value in np.ndenumerate(values):
            ax.text(col, row, format(value, fmt), ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black")
        figure.colorbar(image, ax=ax, label=label)
    axes[0].set_title(f"{title} (counts)")
    axes[1].set_title(f"{title} (row-normalised)")
    return figure
