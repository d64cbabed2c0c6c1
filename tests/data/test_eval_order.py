"""Val and test in a seeded, class-stratified order: a run limited to a few batches scores every class."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from fer_lightning.core.classes import NUM_CLASSES
from fer_lightning.data.splits import stratified_order
from fer_lightning.evaluation.predictions import ReportSettings, SplitPredictions
from fer_lightning.evaluation.reports import write_split_report
from tests.conftest import write_folders


def test_every_prefix_of_a_class_sorted_split_holds_the_classes_in_their_shares() -> None:
    labels = np.repeat(np.arange(NUM_CLASSES), [40, 6, 50, 90, 60, 40, 64])  # sorted, as read from class folders
    order = stratified_order(labels, seed=3)
    assert sorted(order.tolist()) == list(range(len(labels)))  # the same faces
    assert np.array_equal(order, stratified_order(labels, seed=3)) and not np.array_equal(
        order, stratified_order(labels, 4)
    )
    for prefix in (35, 70, 175):
        counts = np.bincount(labels[order[:prefix]], minlength=NUM_CLASSES)
        expected = prefix * np.bincount(labels) / len(labels)
        assert np.all(np.abs(counts - expected) <= 1.5), (prefix, counts, expected)


def test_a_limited_val_and_test_pass_sees_every_class(make_cfg, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(NUM_CLASSES), 12)
    images = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    usages = ["Training" if i % 12 < 6 else "PublicTest" for i in range(len(labels))]
    root = write_folders(tmp_path / "data", images, labels, usages)
    cfg = make_cfg(f"data.root={root}", "data.cache_dir=null", "data.clean=false", "data.val_fraction=0.3")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    for split in ("val", "test"):
        first = datamodule.splits[split].labels[:16]  # the faces limit_*_batches=1 sees at batch size 16
        assert len(set(first.tolist())) >= 6, (split, first)
        files = datamodule.splits[split].sources
        assert len(set(files.tolist())) == len(files)  # each face's file kept, for predictions.csv


def test_a_report_on_a_split_without_some_classes_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    true = np.array([0, 0, 3, 3, 6])
    probabilities = np.eye(NUM_CLASSES)[[0, 3, 3, 4, 6]].astype(np.float32)
    with caplog.at_level(logging.WARNING):
        predictions = SplitPredictions("val", np.array([f"f{i}" for i in range(5)]), true, probabilities)
        settings = ReportSettings(ece_bins=15, misclassified_per_class=0, saliency_per_class=0)
        metrics = write_split_report(predictions, tmp_path, settings)
    assert metrics["classes_present"] == 3
    assert "val: 5 faces hold 3 of the 7 classes (absent: disgust, fear, sad, surprise)" in caplog.text
    assert "sad (predicted 1 times)" in (tmp_path / "classification_report.md").read_text()
