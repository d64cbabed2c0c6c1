"""The report of a model's predictions on one split: classification_report.csv/.md, confusion_matrix.png,
reliability_diagram.png, predictions.csv, metrics.json (and the same figures and table in TensorBoard).

Written by ``python -m fer_lightning.eval`` and at the end of every training run, from predictions made once.
Macro averages in a report run over the classes present in the evaluated split's true labels (a class never
predicted counting with precision 0), as in the logged metrics (models/classifier.py); on FER-2013 all seven are
present; on another dataset without, say, neutral, the absent class is named with how often it was
predicted instead of dragging the mean down with a zero. Leakage-aware numbers split the faces by whether an exact
pixel copy sits in the train split as read; calibration is the expected calibration error (ECE), and with a
temperature fitted on val, the ECE after scaling too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.core.figures import confusion_matrix_figure, plt, write_png
from fer_lightning.core.files import write_csv, write_json, write_text
from fer_lightning.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
    reliability_figure,
)

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
            metrics[f"accuracy_{name}"] = float(report.loc["accuracy", "f1"])
            metrics[f"macro_f1_{name}"] = float(report.loc["macro avg", "f1"])
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
            f"| all | {int(metrics['images']):,} | {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} |",
        ]
        for name, label in (("copy_in_train", "with a copy in train"), ("no_copy", "without")):
            if f"accuracy_{name}" in metrics:
                lines.append(
                    f"| {label} | {int(metrics[f'images_{name}']):,} | {metrics[f'accuracy_{name}']:.4f} | "
                    f"{metrics[f'macro_f1_{name}']:.4f} |"
                )
            else:
                lines.append(f"| {label} | 0 | | |")
    return "\n".join(lines) + "\n"


def write_split_report(
    out_dir: Path,
    sources: np.ndarray,
    true: np.ndarray,
    probabilities: np.ndarray,
    title: str,
    writer=None,
    run_name: str | None = None,
    copy_in_train: np.ndarray | None = None,
    ece_bins: int = 15,
    temperature: float | None = None,
) -> dict[str, float]:
    """All report files for one split into ``out_dir`` (and TensorBoard when ``writer`` is given, under ``title``).
    The confusion matrix is titled with the split's accuracy and ``run_name``, so a PNG or card seen alone says
    whose it is. ``copy_in_train``: per face, whether an exact copy is in the train split (leakage-aware numbers
    and a predictions.csv column); ``temperature``: one fitted on val, whose ECE after scaling is reported too
    (predictions.csv keeps the model's own probabilities, as predict gives them)."""
    predicted = probabilities.argmax(1)
    report = classification_report(true, predicted, present_classes(true))
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
    predictions = pd.DataFrame(
        {
            "source": sources,
            "true": [EMOTIONS[y] for y in true],
            "predicted": [EMOTIONS[y] for y in predicted],
            **({"copy_in_train": copy_in_train.astype(bool)} if copy_in_train is not None else {}),
            **{f"p_{name}": probabilities[:, i] for i, name in enumerate(EMOTIONS)},
        }
    )
    metrics = {
        "accuracy": float(report.loc["accuracy", "f1"]),
        **{
            f"{avg.split()[0]}_{m}": float(report.loc[avg, m])
            for avg in ("macro avg", "weighted avg")
            for m in ("precision", "recall", "f1")
        },
        **{f"f1_{name}": float(report.loc[name, "f1"]) for name in EMOTIONS},
        "images": int(len(true)),
        "classes_present": int(len(present_classes(true))),
        **{f"predicted_absent_{name}": count for name, count in absent.items()},
        "ece": expected_calibration_error(probabilities, true, ece_bins),
        "nll": negative_log_likelihood(probabilities, true),
    }
    curves = {"model": reliability_bins(probabilities, true, ece_bins)}
    if temperature is not None:
        calibrated = apply_temperature(probabilities, temperature)
        metrics.update(
            temperature=float(temperature),
            ece_calibrated=expected_calibration_error(calibrated, true, ece_bins),
            nll_calibrated=negative_log_likelihood(calibrated, true),
        )
        curves[f"temperature {temperature:.2f} (fitted on val)"] = reliability_bins(calibrated, true, ece_bins)
    if copy_in_train is not None:
        metrics.update(leakage_metrics(true, predicted, copy_in_train.astype(bool)))
    figure = confusion_matrix_figure(
        confusion_counts(true, predicted),
        EMOTIONS,
        title=f"{title}: accuracy {metrics['accuracy']:.1%} ({len(true):,} faces)",
        subtitle=run_name,
    )
    calibrated_title = f", {metrics['ece_calibrated']:.3f} after T" if temperature is not None else ""
    reliability = reliability_figure(
        curves, f"{title}: ECE {metrics['ece']:.3f}{calibrated_title} ({ece_bins} bins)", subtitle=run_name
    )
    write_csv(report, out_dir / "classification_report.csv", index=True)
    markdown = report_markdown(report, title, run_name) + extra_markdown(
        metrics, absent, ece_bins, copy_in_train is not None
    )
    write_text(markdown, out_dir / "classification_report.md")
    write_csv(predictions, out_dir / "predictions.csv")
    write_png(figure, out_dir / "confusion_matrix.png")
    write_png(reliability, out_dir / "reliability_diagram.png")
    write_json({**metrics, "absent_classes": list(absent)}, out_dir / "metrics.json")
    if writer is not None:
        writer.add_figure(f"{title}/confusion_matrix", figure)
        writer.add_figure(f"{title}/reliability_diagram", reliability)
        writer.add_text(f"{title}/classification_report", markdown)
    plt.close(figure)
    plt.close(reliability)
    return metrics
