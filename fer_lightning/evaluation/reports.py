"""The report of a model's predictions on one split: classification_report.csv/.md, predictions.csv, metrics.json,
confusion_matrix.png, reliability_diagram.png, misclassified.png, gradcam.png (and the same figures, the table and the
per-class PR curves in TensorBoard).

One pipeline, written by ``python -m fer_lightning.eval`` and at the end of every training run, from predictions made
once: the numbers (``split_report``, nothing drawn), their rendering (``report_text``, ``report_figures``,
evaluation/figures.py), the writing (``write_report_files``, ``write_figures``); ``write_split_report`` does the three.
Metrics are named as Lightning logs them (``acc``, ``f1``, ...), so training's ``test/acc`` is the report's ``acc``.
Macro averages in a report run over the classes present in the evaluated split's true labels (a class never
predicted counting with precision 0), as in the logged metrics (models/classifier.py); on FER-2013 all seven are
present; on another dataset without, say, neutral, the absent class is named with how often it was
predicted instead of dragging the mean down with a zero. Leakage-aware numbers split the faces by whether an exact
pixel copy sits in the train split as read; calibration is the expected calibration error (ECE), and with a
temperature fitted on val, the ECE after scaling too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.core.figures import confusion_matrix_figure
from fer_lightning.core.files import write_csv, write_json, write_text
from fer_lightning.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
    reliability_figure,
)
from fer_lightning.evaluation.figures import face_figures, log_pr_curves, tensorboard_tag, write_figures
from fer_lightning.evaluation.predictions import ReportSettings, SplitPredictions

log = logging.getLogger(__name__)


def confusion_counts(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows: true class, columns: predicted class, in EMOTIONS order."""
    return np.bincount(true * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def classification_report(true: np.ndarray, predicted: np.ndarray, labels: Sequence[int] | None = None) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support (all seven rows), then accuracy and macro and weighted averages
    (a class never predicted has precision 0), as sklearn's report with ``labels``; the macro mean runs over
    ``labels`` (None: all seven, as the logged metrics)."""
    counts = confusion_counts(true, predicted)
    hits, predicted_n, support = np.diag(counts), counts.sum(0), counts.sum(1)
    precision = np.divide(hits, predicted_n, out=np.zeros(NUM_CLASSES), where=predicted_n > 0)
    recall = np.divide(hits, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(NUM_CLASSES), where=both > 0)
    table = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support}, index=list(EMOTIONS))
    total = support.sum()
    weights = support / max(total, 1)
    over = np.arange(NUM_CLASSES) if labels is None else np.asarray(labels, np.int64)
    table.loc["accuracy"] = [np.nan, np.nan, hits.sum() / max(total, 1), total]
    table.loc["macro avg"] = [precision[over].mean(), recall[over].mean(), f1[over].mean(), total]
    table.loc["weighted avg"] = [weights @ precision, weights @ recall, weights @ f1, total]
    return table.astype({"support": int})


def present_classes(true: np.ndarray) -> np.ndarray:
    """The classes a split's true labels hold: what its macro averages run over."""
    return np.unique(true)


def absent_predictions(true: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    """Each class absent from the true labels, with how many faces were predicted as it (all of them errors)."""
    return {
        EMOTIONS[c]: int((predicted == c).sum())
        for c in sorted(set(range(NUM_CLASSES)) - set(present_classes(true).tolist()))
    }


def leakage_metrics(true: np.ndarray, predicted: np.ndarray, copy_in_train: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 (over the classes present in each group) on the faces with an exact copy in the train
    split and on those without, and how many each holds; a group with no faces gets only its count."""
    metrics: dict[str, float] = {}
    for name, mask in (("copy_in_train", copy_in_train), ("no_copy", ~copy_in_train)):
        metrics[f"images_{name}"] = int(mask.sum())
        if mask.any():
            report = classification_report(true[mask], predicted[mask], present_classes(true[mask]))
            metrics[f"acc_{name}"] = float(report.loc["accuracy", "f1"])
            metrics[f"f1_{name}"] = float(report.loc["macro avg", "f1"])
    return metrics


def report_markdown(report: pd.DataFrame, title: str, run_name: str | None = None) -> str:
    """The report as sklearn's text report reads: support as integers, blank where a row has no value (the
    accuracy row's precision and recall), not ``nan``."""
    cells = report.astype(object)
    for column in ("precision", "recall", "f1"):
        cells[column] = [("" if pd.isna(value) else f"{value:.4f}") for value in report[column]]
    cells["support"] = [f"{int(value)}" for value in report["support"]]
    heading = f"# {title}\n\n" + (f"Run: {run_name}\n\n" if run_name else "")
    return (
        heading + cells.to_markdown(colalign=("left", "right", "right", "right", "right"), disable_numparse=True) + "\n"
    )


def extra_markdown(metrics: dict[str, float], absent: dict[str, int], ece_bins: int, leakage: bool) -> str:
    """The sections beneath the table: classes absent from the labels, calibration, leakage."""
    lines = []
    if absent:
        named = ", ".join(f"{name} (predicted {count:,} times)" for name, count in absent.items())
        lines += [
            "",
            f"Classes absent from the true labels: {named}; macro averages run over the "
            f"{int(metrics['classes_present'])} present.",
        ]
    lines += [
        "",
        "## Calibration",
        "",
        f"ECE ({ece_bins} equal-width bins): {metrics['ece']:.4f}; NLL: {metrics['nll']:.4f}.",
    ]
    if "temperature" in metrics:
        lines.append(
            f"Temperature fitted on val: {metrics['temperature']:.4f}; after scaling, ECE "
            f"{metrics['ece_calibrated']:.4f}, NLL {metrics['nll_calibrated']:.4f} (accuracy unchanged)."
        )
    if leakage:
        lines += [
            "",
            "## Leakage: exact pixel copies in the train split (as read, before cleaning)",
            "",
            "| faces | count | accuracy | macro F1 |",
            "|:--|--:|--:|--:|",
            f"| all | {int(metrics['images']):,} | {metrics['acc']:.4f} | {metrics['f1']:.4f} |",
        ]
        for name, label in (("copy_in_train", "with a copy in train"), ("no_copy", "without")):
            if f"acc_{name}" in metrics:
                lines.append(
                    f"| {label} | {int(metrics[f'images_{name}']):,} | {metrics[f'acc_{name}']:.4f} | "
                    f"{metrics[f'f1_{name}']:.4f} |"
                )
            else:
                lines.append(f"| {label} | 0 | | |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SplitReport:
    """A split's numbers, computed once (``split_report``): the table, the metrics, the reliability curves and the
    per-face rows; every file and figure is rendered from it."""

    title: str
    run_name: str | None
    table: pd.DataFrame  # classification_report.csv
    metrics: dict[str, float]  # metrics.json
    absent: dict[str, int]  # classes absent from the labels -> how often they were predicted
    reliability: dict[str, pd.DataFrame]  # the model's curve, and the temperature-scaled one when there is one
    ece_bins: int
    rows: pd.DataFrame  # predictions.csv


def split_metrics(
    table: pd.DataFrame, true: np.ndarray, probabilities: np.ndarray, absent: dict[str, int], ece_bins: int
) -> dict[str, float]:
    """The numbers of a split under the names Lightning logs them by (models/classifier.py ``log_stage``): ``acc``;
    ``precision``, ``recall``, ``f1`` as macro averages over the classes present; ``f1_<emotion>``; then what only a
    report has (weighted averages, calibration, how many faces)."""
    return {
        "acc": float(table.loc["accuracy", "f1"]),
        **{m: float(table.loc["macro avg", m]) for m in ("precision", "recall", "f1")},
        **{f"weighted_{m}": float(table.loc["weighted avg", m]) for m in ("precision", "recall", "f1")},
        **{f"f1_{name}": float(table.loc[name, "f1"]) for name in EMOTIONS},
        "images": int(len(true)),
        "classes_present": int(len(present_classes(true))),
        **{f"predicted_absent_{name}": count for name, count in absent.items()},
        "ece": expected_calibration_error(probabilities, true, ece_bins),
        "nll": negative_log_likelihood(probabilities, true),
    }


def split_report(
    predictions: SplitPredictions,
    title: str,
    ece_bins: int,
    run_name: str | None = None,
    temperature: float | None = None,
) -> SplitReport:
    """Every number of one split's report, nothing drawn or written. ``temperature``: one fitted on val, whose ECE
    after scaling is reported too (the rows keep the model's own probabilities, as predict gives them)."""
    true, probabilities, predicted = predictions.true, predictions.probabilities, predictions.predicted
    table = classification_report(true, predicted, present_classes(true))
    absent = absent_predictions(true, predicted)
    if absent:
        log.warning(
            "%s: %d faces hold %d of the %d classes (absent: %s); its macro averages leave those out (a limited run "
            "scores a sample: raise limit_val_batches / limit_test_batches)",
            title,
            len(true),
            NUM_CLASSES - len(absent),
            NUM_CLASSES,
            ", ".join(absent),
        )
    metrics = split_metrics(table, true, probabilities, absent, ece_bins)
    curves = {"model": reliability_bins(probabilities, true, ece_bins)}
    if temperature is not None:
        calibrated = apply_temperature(probabilities, temperature)
        metrics.update(
            temperature=float(temperature),
            ece_calibrated=expected_calibration_error(calibrated, true, ece_bins),
            nll_calibrated=negative_log_likelihood(calibrated, true),
        )
        curves[f"temperature {temperature:.2f} (fitted on val)"] = reliability_bins(calibrated, true, ece_bins)
    copies = predictions.copy_in_train
    if copies is not None:
        metrics.update(leakage_metrics(true, predicted, copies.astype(bool)))
    rows = pd.DataFrame(
        {
            "source": predictions.sources,
            "true": [EMOTIONS[y] for y in true],
            "predicted": [EMOTIONS[y] for y in predicted],
            **({"copy_in_train": copies.astype(bool)} if copies is not None else {}),
            **{f"p_{name}": probabilities[:, i] for i, name in enumerate(EMOTIONS)},
        }
    )
    return SplitReport(title, run_name, table, metrics, absent, curves, ece_bins, rows)


def report_text(report: SplitReport) -> str:
    """classification_report.md: the table, then the sections beneath it."""
    leakage = "images_copy_in_train" in report.metrics
    return report_markdown(report.table, report.title, report.run_name) + extra_markdown(
        report.metrics, report.absent, report.ece_bins, leakage
    )


def report_figures(report: SplitReport) -> dict[str, Figure]:
    """The confusion matrix (titled with the split's accuracy and the run, so a PNG seen alone says whose it is) and
    the reliability diagram."""
    metrics, title = report.metrics, report.title
    calibrated = f", {metrics['ece_calibrated']:.3f} after T" if "ece_calibrated" in metrics else ""
    counts = confusion_counts(
        report.rows["true"].map(EMOTIONS.index).to_numpy(), report.rows["predicted"].map(EMOTIONS.index).to_numpy()
    )
    return {
        "confusion_matrix": confusion_matrix_figure(
            counts,
            EMOTIONS,
            title=f"{title}: accuracy {metrics['acc']:.1%} ({int(metrics['images']):,} faces)",
            subtitle=report.run_name,
        ),
        "reliability_diagram": reliability_figure(
            report.reliability,
            f"{title}: ECE {metrics['ece']:.3f}{calibrated} ({report.ece_bins} bins)",
            subtitle=report.run_name,
        ),
    }


def write_report_files(report: SplitReport, out_dir: Path) -> None:
    """classification_report.csv and .md, predictions.csv and metrics.json, each written whole or not at all."""
    write_csv(report.table, out_dir / "classification_report.csv", index=True)
    write_text(report_text(report), out_dir / "classification_report.md")
    write_csv(report.rows, out_dir / "predictions.csv")
    write_json({**report.metrics, "absent_classes": list(report.absent)}, out_dir / "metrics.json")


def write_split_report(
    predictions: SplitPredictions,
    out_dir: Path,
    settings: ReportSettings,
    title: str | None = None,
    run_name: str | None = None,
    writer: SummaryWriter | None = None,
    step: int = 0,
    net: nn.Module | None = None,
    transform: Callable[..., dict] | None = None,
    temperature: float | None = None,
) -> dict[str, float]:
    """One split's report, the same from train and eval: its numbers, the files, and every figure (confusion matrix,
    reliability diagram; with ``predictions.faces``, the misclassified faces, and with ``net`` and ``transform``, the
    Grad-CAM grid) as PNG and, given a ``writer``, in TensorBoard under ``<split>/`` at ``step`` beside the table and
    the per-class PR curves. Returns the metrics."""
    report = split_report(predictions, title or predictions.split, settings.ece_bins, run_name, temperature)
    write_report_files(report, out_dir)
    figures = report_figures(report) | face_figures(predictions, settings, net, transform)
    write_figures(figures, out_dir, writer, predictions.split, step)
    if writer is not None:
        writer.add_text(tensorboard_tag(f"{predictions.split}/classification_report"), report_text(report), step)
        log_pr_curves(writer, predictions, step)
    return report.metrics
