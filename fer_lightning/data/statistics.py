"""What is in the data: class balance, samples, mean faces, intensity and contrast per class, defects.

Pure functions from splits of ``FaceRecords`` to tables (pandas) and figures (matplotlib), so the
analyze entry point only writes them out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.core.figures import class_rows_figure, plt
from fer_lightning.data.cleaning import pixel_std
from fer_lightning.data.readers import FaceRecords
from fer_lightning.data.splits import split_table


def class_counts(splits: dict[str, FaceRecords], report: pd.DataFrame) -> pd.DataFrame:
    """Faces per class and split as used for training, what cleaning dropped, and the imbalance ratio."""
    table = split_table({split: records.labels for split, records in splits.items()})
    dropped = report[(report["action"] == "drop") & (report["label"] != "")]
    for split in splits:
        per_class = dropped[dropped["split"] == split]["label"].value_counts()
        table[f"{split}_dropped"] = [int(per_class.get(name, 0)) for name in EMOTIONS] + [int(per_class.sum())]
    counts = table.loc[list(EMOTIONS), list(splits)]
    ratio = (counts.max() / counts.min().clip(lower=1)).round(2)
    table = table.astype(object)
    table.loc["imbalance (max/min)"] = [ratio.get(column, "") for column in table.columns]
    return table


def class_distribution_figure(table: pd.DataFrame, splits: list[str]) -> Figure:
    figure, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    counts = table.loc[list(EMOTIONS), splits]
    x, width = np.arange(NUM_CLASSES), 0.8 / len(splits)
    for offset, split in enumerate(splits):
        bars = ax.bar(x + (offset - (len(splits) - 1) / 2) * width, counts[split], width, label=split)
        ax.bar_label(bars, fontsize=7)
    ax.set(xticks=x, xticklabels=EMOTIONS, xlabel="emotion", ylabel="faces", title="Class distribution per split")
    ax.legend()
    return figure


def sample_grid_figure(records: FaceRecords, per_class: int, rng: np.random.Generator) -> Figure:
    figure, axes = class_rows_figure(per_class, (1.1, 1.2), "Random train faces per class")
    for label, row in enumerate(axes):
        members = np.flatnonzero(records.labels == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for ax, index in zip(row, chosen, strict=False):
            ax.imshow(records.images[index], cmap="gray", vmin=0, vmax=255)
    return figure


def mean_faces_figure(records: FaceRecords) -> Figure:
    figure, axes = plt.subplots(1, NUM_CLASSES, figsize=(NUM_CLASSES * 1.6, 2.2), layout="constrained")
    for label, ax in enumerate(axes):
        members = records.images[records.labels == label]
        if len(members):
            ax.imshow(members.mean(axis=0), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{EMOTIONS[label]}\n(n={len(members)})", fontsize=9)
        ax.axis("off")
    figure.suptitle("Mean train face per class")
    return figure


def intensity_histograms_figure(records: FaceRecords) -> Figure:
    """Intensity distribution per class on a log scale: the saturated bin (255) holds several times any other,
    and on a linear scale its spike flattens every curve. Its share per class is in the legend."""
    top = np.iinfo(records.images.dtype).max
    figure, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    for label, name in enumerate(EMOTIONS):
        members = records.images[records.labels == label]
        if len(members):
            density = np.bincount(members.ravel(), minlength=top + 1) / members.size
            ax.plot(np.arange(top + 1), 100 * density, label=f"{name} ({100 * density[top]:.1f}% at {top})", lw=1.2)
    overall = 100 * (records.images == top).mean() if len(records) else 0.0
    ax.set(
        xlabel=f"pixel intensity (0-{top})",
        ylabel="% of the class's pixels (log scale)",
        yscale="log",
        xlim=(0, top),
        title=f"Pixel intensity per class (train): {overall:.1f}% of all pixels are saturated ({top})",
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.1, 1, 10 rather than powers of ten
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(title=f"class (share at {top})", fontsize=8, loc="upper center")
    return figure


def brightness_contrast(records: FaceRecords) -> pd.DataFrame:
    """Per class: mean and spread of image brightness (mean pixel) and contrast (pixel std), in 0-255."""
    flat = records.images.reshape(len(records), -1)
    brightness = flat.mean(axis=1) if len(records) else np.empty(0)
    contrast = pixel_std(records.images).astype(np.float64)
    rows = {}
    for label, name in enumerate(EMOTIONS):
        member = records.labels == label
        rows[name] = {
            "faces": int(member.sum()),
            "brightness_mean": brightness[member].mean() if member.any() else np.nan,
            "brightness_std": brightness[member].std() if member.any() else np.nan,
            "contrast_mean": contrast[member].mean() if member.any() else np.nan,
            "contrast_std": contrast[member].std() if member.any() else np.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)
