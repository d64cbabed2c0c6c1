"""The report of a model's predictions on one split: classification_report.csv/.md, confusion_matrix.png,
predictions.csv, metrics.json (and the same figure and table in TensorBoard).

Written by ``python -m fer_lightning.eval`` and at the end of every training run, from predictions made once.
Macro averages are one definition everywhere (here and in the logged metrics): the unweighted mean over the
seven classes, a class never predicted counting with precision 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_lightning.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.figures import confusion_matrix_figure, plt
from fer_lightning.files import write_atomically, write_csv, write_json


def confusion_counts(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows: true class, columns: predicted class, in EMOTIONS order."""
    return np.bincount(true * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def classification_report(true: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, then accuracy and macro and weighted averages over
    all seven classes (a class never predicted has precision 0), as sklearn's report with labels 0..6."""
    counts = confusion_counts(true, predicted)
    hits, predicted_n, support = np.diag(counts), counts.sum(0), counts.sum(1)
    precision = np.divide(hits, predicted_n, out=np.zeros(NUM_CLASSES), where=predicted_n > 0)
    recall = np.divide(hits, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(NUM_CLASSES), where=both > 0)
    table = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support}, index=list(EMOTIONS))
    total = support.sum()
    weights = support / max(total, 1)
    table.loc["accuracy"] = [np.nan, np.nan, hits.sum() / max(total, 1), total]
    table.loc["macro avg"] = [precision.mean(), recall.mean(), f1.mean(), total]
    table.loc["weighted avg"] = [weights @ precision, weights @ recall, weights @ f1, total]
    return table.astype({"support": int})


def report_markdown(report: pd.DataFrame, title: str, run_name: str | None = None) -> str:
    """The report as sklearn's text report reads: support as integers, blank where a row has no value (the
    accuracy row's precision and recall), not ``nan``."""
    cells = report.astype(object)
    for column in ("precision", "recall", "f1"):
        cells[column] = [("" if pd.isna(value) else f"{value:.4f}") for value in report[column]]
    cells["support"] = [f"{int(value)}" for value in report["support"]]
    heading = f"# {title}\n\n" + (f"Run: {run_name}\n\n" if run_name else "")
    return heading + cells.to_markdown(colalign=("left", "right", "right", "right", "right"), disable_numparse=True) + "\n"


def write_report(
    out_dir: Path, sources: np.ndarray, true: np.ndarray, probabilities: np.ndarray, title: str, writer=None,
    run_name: str | None = None,
) -> dict[str, float]:
    """All report files for one split into ``out_dir`` (and TensorBoard when ``writer`` is given, under ``title``).
    The confusion matrix is titled with the split's accuracy and ``run_name``, so a PNG or card seen alone says
    whose it is."""
    predicted = probabilities.argmax(1)
    report = classification_report(true, predicted)
    predictions = pd.DataFrame({
        "source": sources, "true": [EMOTIONS[y] for y in true], "predicted": [EMOTIONS[y] for y in predicted],
        **{f"p_{name}": probabilities[:, i] for i, name in enumerate(EMOTIONS)},
    })
    metrics = {
        "accuracy": float(report.loc["accuracy", "f1"]),
        **{f"{avg.split()[0]}_{m}": float(report.loc[avg, m]) for avg in ("macro avg", "weighted avg") for m in ("precision", "recall", "f1")},
        **{f"f1_{name}": float(report.loc[name, "f1"]) for name in EMOTIONS},
        "images": int(len(true)),
    }
    figure = confusion_matrix_figure(confusion_counts(true, predicted), EMOTIONS,
                                     title=f"{title}: accuracy {metrics['accuracy']:.1%} ({len(true):,} faces)",
                                     subtitle=run_name)
    write_csv(report, out_dir / "classification_report.csv", index=True)
    markdown = report_markdown(report, title, run_name)
    write_atomically(out_dir / "classification_report.md", lambda tmp: tmp.write_text(markdown))
    write_csv(predictions, out_dir / "predictions.csv")
    write_atomically(out_dir / "confusion_matrix.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    write_json(metrics, out_dir / "metrics.json")
    if writer is not None:
        writer.add_figure(f"{title}/confusion_matrix", figure)
        writer.add_text(f"{title}/classification_report", markdown)
    plt.close(figure)
    return metrics
