"""Figures that readers of a run look at: readable at a glance, class names on the axes."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs are headless: training servers, CI, sweeps

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.files import write_atomically

DPI = 110  # every PNG a run writes


def write_png(figure: Figure, path: Path) -> None:
    """A figure as a PNG, written whole or not at all (the figure stays open: the caller may log it too)."""
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI))


def class_rows_figure(columns: int, cell: tuple[float, float], title: str) -> tuple[Figure, np.ndarray]:
    """A grid of face cells, a row per class named at its left, every cell blank until the caller draws in it: the
    sample, misclassified and Grad-CAM figures share one look."""
    width, height = cell
    figure, axes = plt.subplots(
        len(EMOTIONS),
        max(1, columns),
        figsize=(max(1, columns) * width, len(EMOTIONS) * height),
        layout="constrained",
        squeeze=False,
    )
    for name, row in zip(EMOTIONS, axes, strict=True):
        for ax in row:
            ax.axis("off")
        row[0].text(-0.15, 0.5, name, transform=row[0].transAxes, ha="right", va="center", fontsize=9)
    # Wrapped to the figure's width: a grid one or two faces wide is narrower than the title's one line.
    figure.suptitle(textwrap.fill(title, max(20, int(figure.get_figwidth() * 72 * 0.95 / (0.6 * 9)))), fontsize=9)
    return figure, axes


def fit_width(text: str, figure: Figure, fontsize: float, share: float = 0.75) -> str:
    """``text`` shortened from the left, its end kept (a run path's distinctive part), to about ``share`` of the
    figure's width at ``fontsize`` points: a subtitle placed over the axes is never cut at the figure's edge."""
    max_chars = max(8, int(figure.get_figwidth() * 72 * share / (0.6 * fontsize)))
    return text if len(text) <= max_chars else "…" + text[-(max_chars - 1) :]


def confusion_matrix_figure(
    counts: np.ndarray, class_names: Sequence[str], title: str = "Test confusion matrix", subtitle: str | None = None
) -> Figure:
    """One panel readable at TensorBoard card size: colour and large numbers are row-normalised rates (recall
    per true class on the diagonal), each cell's count in small type beneath. ``title`` is the caller's (e.g.
    split and accuracy); ``subtitle`` a second, smaller line (e.g. the run's name)."""
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, ax = plt.subplots(figsize=(5.4, 5.6), layout="constrained")
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=35, ha="right", rotation_mode="anchor", fontsize=10)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=10)
    ax.set_xlabel("predicted", fontsize=10)
    ax.set_ylabel("true", fontsize=10)
    for (row, col), rate in np.ndenumerate(rates):
        if not counts[row].sum():  # a class with no faces: no rates to show (not a row of 0.00)
            if col == 0:
                ax.text(len(class_names) / 2 - 0.5, row, "no faces", ha="center", va="center", fontsize=9, color="gray")
            continue
        color = "white" if rate > 0.5 else "black"
        ax.text(col, row - 0.12, f"{rate:.2f}", ha="center", va="center", fontsize=12, color=color)
        ax.text(col, row + 0.27, f"{int(counts[row, col]):,}", ha="center", va="center", fontsize=7, color=color)
    ax.set_title(title, fontsize=12, loc="left", pad=6 if subtitle is None else 18)
    if subtitle is not None:  # a second, smaller line between the title and the matrix
        ax.text(
            0, 1.01, fit_width(subtitle, figure, 9), transform=ax.transAxes, fontsize=9, color="dimgray", va="bottom"
        )
    return figure
