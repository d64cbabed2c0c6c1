"""The analysis files exist and hold the right counts for a dataset with known counts and defects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.data.analysis import analyze
from tests.conftest import random_faces, write_csv


def test_analysis_files_hold_the_known_counts(make_cfg, tmp_path: Path) -> None:
    per_class = {"angry": 6, "disgust": 2, "fear": 5, "happy": 9, "sad": 4, "surprise": 3, "neutral": 7}
    labels = np.concatenate([[EMOTIONS.index(c)] * n for c, n in per_class.items()] + [np.arange(7), np.arange(7)])
    images, _ = random_faces(len(labels), seed=9)
    usage = ["Training"] * 36 + ["PublicTest"] * 7 + ["PrivateTest"] * 7
    images[1] = images[0]  # a duplicate angry face in train: dropped
    images[2] = 0  # a blank angry face in train: dropped
    root = write_csv(tmp_path / "fer2013.csv", images, labels, usage)

    out = analyze(make_cfg(f"data.root={root}", "data.cache_dir=null", config="analyze", fast=False))

    counts = pd.read_csv(out / "class_counts.csv", index_col=0)
    assert counts.loc["angry", "train"] == 4 and counts.loc["angry", "train_dropped"] == 2
    for name, n in per_class.items():
        if name != "angry":
            assert counts.loc[name, "train"] == n and counts.loc[name, "val"] == 1 and counts.loc[name, "test"] == 1
    assert counts.loc["total", "train"] == 34
    assert float(counts.loc["imbalance (max/min)", "train"]) == 9 / 2
    summary = pd.read_csv(out / "cleaning_summary.csv")
    assert set(zip(summary["kind"], summary["records"], strict=True)) == {("blank", 1), ("duplicate", 1)}
    stats = pd.read_csv(out / "brightness_contrast.csv", index_col=0)
    assert stats.loc["happy", "faces"] == 9
    expected = images[[i for i in range(36) if labels[i] == 3]].reshape(9, -1).mean(1)
    assert abs(stats.loc["happy", "brightness_mean"] - expected.mean()) < 0.01
    for name in ("class_distribution", "samples", "mean_faces", "intensity_histograms"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    assert (out / "cleaning_report.csv").is_file() and list((out / "tensorboard").glob("events.*"))
