"""Evaluating a trained model on one split: predictions (optionally test-time augmented) and the report files.

Used by ``python -m fer_lightning.eval`` and at the end of every training run, so both write the same
files: classification_report.csv/.md, confusion_matrix.png, predictions.csv, metrics.json.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import ten_crop

from fer_lightning.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.figures import confusion_matrix_figure, plt
from fer_lightning.files import write_atomically, write_csv, write_json

TTA = Literal["none", "hflip", "tencrop"]


def tta_views(images: Tensor, tta: TTA, crop_fraction: float, crop_size: int | None = None) -> list[Tensor]:
    """The views whose softmax outputs are averaged: the image, its mirror, or ten crops (corners and
    centre, and their mirrors), as in the best FER-2013 results. A net trained on random crops
    (``crop_size``) gets ten crops of that side from the whole face; any other net gets crops of
    ``crop_fraction`` of the side, resized back to its input size."""
    if tta == "none":
        return [images]
    if tta == "hflip":
        return [images, images.flip(-1)]
    if tta == "tencrop":
        if crop_size:
            return list(ten_crop(images, [crop_size, crop_size]))
        size = images.shape[-1]
        crops = ten_crop(images, [round(size * crop_fraction)] * 2)
        return [F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False) for c in crops]
    raise ValueError(f"eval.tta={tta!r}: expected none, hflip or tencrop")


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, loader: DataLoader, tta: TTA = "none", crop_fraction: float = 0.9, bf16: bool = False,
    crop_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, 7), true labels (N,)) over a loader, in the loader's order.

    ``bf16`` autocasts as bf16-mixed training does, so an evaluation reproduces the logged numbers.
    With ten-crop TTA of a net trained on crops, the loader gives whole faces (``dataloader(whole=True)``).
    """
    model.eval()
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    probabilities, labels = [], []
    for images, targets in loader:
        images = images.to(device)
        with autocast:
            views = [model(view).float().softmax(-1) for view in tta_views(images, tta, crop_fraction, crop_size)]
        probabilities.append(torch.stack(views).mean(0).cpu())
        labels.append(targets)
    return torch.cat(probabilities).numpy(), torch.cat(labels).numpy()


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


def write_report(
    out_dir: Path, sources: np.ndarray, true: np.ndarray, probabilities: np.ndarray, title: str, writer=None
) -> dict[str, float]:
    """All report files for one split into ``out_dir`` (and TensorBoard when ``writer`` is given)."""
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
    figure = confusion_matrix_figure(confusion_counts(true, predicted), EMOTIONS, title=title)
    write_csv(report, out_dir / "classification_report.csv", index=True)
    markdown = f"# {title}\n\n" + report.to_markdown(floatfmt=".4f") + "\n"
    write_atomically(out_dir / "classification_report.md", lambda tmp: tmp.write_text(markdown))
    write_csv(predictions, out_dir / "predictions.csv")
    write_atomically(out_dir / "confusion_matrix.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    write_json(metrics, out_dir / "metrics.json")
    if writer is not None:
        writer.add_figure(f"{title}/confusion_matrix", figure)
        writer.add_text(f"{title}/classification_report", markdown)
    plt.close(figure)
    return metrics
