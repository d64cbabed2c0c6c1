"""The figures of a split's report that show faces (the most confidently wrong ones, Grad-CAM over right and wrong
ones) and the one way every report figure is written: a PNG beside the report and, given a writer, a TensorBoard image
under ``<split>/<name>``, all at one step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.figures import class_rows_figure, plt, write_png
from fer_lightning.evaluation.predictions import ReportSettings, SplitPredictions
from fer_lightning.evaluation.saliency import saliency_grid


def misclassified_figure(
    faces: np.ndarray, true: np.ndarray, probabilities: np.ndarray, per_class: int, split: str = "test"
) -> Figure:
    """A row per true class: its most confidently wrong faces, each titled with the predicted class and probability."""
    predicted = probabilities.argmax(1)
    figure, axes = class_rows_figure(
        per_class, (1.25, 1.45), f"Misclassified {split} faces: true class per row; predicted class and its probability"
    )
    for label, row in enumerate(axes):
        wrong = np.flatnonzero((true == label) & (predicted != label))
        wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:per_class]
        for ax, index in zip(row, wrong, strict=False):
            ax.imshow(faces[index], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{EMOTIONS[predicted[index]]} {probabilities[index, predicted[index]]:.2f}", fontsize=7)
    return figure


def face_figures(
    predictions: SplitPredictions,
    settings: ReportSettings,
    net: nn.Module | None = None,
    transform: Callable[..., dict] | None = None,
) -> dict[str, Figure]:
    """The misclassified grid and (with the net and the eval transform it saw its faces through) the Grad-CAM grid,
    each where its setting asks for it; none without the faces."""
    faces, split = predictions.faces, predictions.split
    figures: dict[str, Figure] = {}
    if faces is None:
        return figures
    if settings.misclassified_per_class:
        figures["misclassified"] = misclassified_figure(
            faces, predictions.true, predictions.probabilities, settings.misclassified_per_class, split
        )
    if settings.saliency_per_class and net is not None and transform is not None:
        figures["gradcam"] = saliency_grid(
            net, faces, transform, predictions.true, predictions.probabilities, settings.saliency_per_class, split
        )
    return figures


# TensorBoard orders a run's tag groups by name and opens the first two: "test" would come before "train" and "val".
# Test's numbers and figures go under "~test", which sorts after them, so TensorBoard opens on the learning curves.
# TensorBoard's names only: metrics.json, the reports, the leaderboard and the logs say test/.
TENSORBOARD_GROUPS = {"test": "~test"}


def tensorboard_tag(name: str) -> str:
    """A metric's or figure's name as TensorBoard shows it: ``test/acc`` -> ``~test/acc``; others as they are."""
    stage, slash, rest = name.partition("/")
    return f"{TENSORBOARD_GROUPS.get(stage, stage)}{slash}{rest}"


def write_figures(
    figures: Mapping[str, Figure], out_dir: Path, writer: SummaryWriter | None, split: str, step: int
) -> None:
    """Each figure as ``<out_dir>/<name>.png`` (written whole or not at all) and as the TensorBoard image
    ``<split>/<name>`` at ``step``; then closed."""
    for name, figure in figures.items():
        write_png(figure, out_dir / f"{name}.png")
        if writer is not None:
            writer.add_figure(tensorboard_tag(f"{split}/{name}"), figure, step, close=False)
        plt.close(figure)


def log_pr_curves(writer: SummaryWriter, predictions: SplitPredictions, step: int) -> None:
    """One precision-recall curve per class (``<split>/pr_<emotion>``) in TensorBoard's PR Curves tab."""
    for index, emotion in enumerate(EMOTIONS):
        tag = tensorboard_tag(f"{predictions.split}/pr_{emotion}")
        writer.add_pr_curve(tag, predictions.true == index, predictions.probabilities[:, index], step)
