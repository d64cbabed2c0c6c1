"""The eval report agrees with sklearn, and evaluating a trained checkpoint reproduces its logged test accuracy."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import classification_report as sklearn_report
from sklearn.metrics import f1_score

from fer_lightning.core.checkpoints import TEMPERATURE_KEY, read_checkpoint
from fer_lightning.core.classes import EMOTIONS
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.evaluation.calibration import apply_temperature, expected_calibration_error
from fer_lightning.evaluation.evaluate import evaluate
from fer_lightning.evaluation.inference import tta_views
from fer_lightning.evaluation.predictions import ReportSettings, SplitPredictions
from fer_lightning.evaluation.reports import classification_report, write_split_report
from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN, random_faces, write_folders


def test_report_numbers_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 7, 300)
    predicted = np.where(rng.random(300) < 0.6, true, rng.integers(0, 7, 300))
    predicted[predicted == 1] = 2  # disgust never predicted: precision 0, as sklearn's zero_division=0
    ours = classification_report(true, predicted)
    theirs = sklearn_report(
        true, predicted, labels=range(7), target_names=list(EMOTIONS), output_dict=True, zero_division=0
    )
    for row in [*EMOTIONS, "macro avg", "weighted avg"]:
        for ours_col, theirs_col in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
            ("support", "support"),
        ):
            assert ours.loc[row, ours_col] == pytest.approx(theirs[row][theirs_col]), (row, ours_col)
    assert ours.loc["accuracy", "f1"] == pytest.approx(theirs["accuracy"])


def test_tta_views() -> None:
    images = torch.arange(2 * 48 * 48, dtype=torch.float).reshape(2, 1, 48, 48)
    assert len(tta_views(images, "none", 0.9)) == 1
    plain, mirrored = tta_views(images, "hflip", 0.9)
    assert torch.equal(mirrored[..., 0], plain[..., -1])
    crops = tta_views(images, "tencrop", 0.9)
    assert len(crops) == 10 and all(c.shape == images.shape for c in crops)
    with pytest.raises(ValueError, match="eval.tta='five'"):
        tta_views(images, "five", 0.9)


def test_eval_of_a_trained_checkpoint_reproduces_its_test_accuracy_and_writes_every_file(
    make_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = train(make_cfg(*SMALL_CNN, "trainer.max_epochs=2", "data.synthetic.train=40"))
    run = tmp_path / "run"
    best = json.loads((run / "metrics.json").read_text())["best_checkpoint"]
    for split in ("val", "test"):  # the end-of-training report
        assert (run / "report" / split / "classification_report.md").is_file()
    written = pd.read_csv(run / "report" / "test" / "classification_report.csv", index_col=0)
    assert written.loc["accuracy", "f1"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert {"val/f1_best", "test/f1", "test/precision", "test/recall"} <= set(metrics)  # one name per number
    assert not any(name.startswith("best/") for name in metrics)

    eval_cfg = make_cfg(f"ckpt_path={best}", config="eval", fast=False)
    with caplog.at_level(logging.INFO, logger="fer_lightning"):
        result = evaluate(eval_cfg)
    assert result["acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    summary = rf"^\s+acc\s+{100 * result['acc']:.2f}%$"  # the summary table in percent, as the line above it
    assert re.search(summary, caplog.text, re.MULTILINE), caplog.text[-1500:]
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 7 * 8 and (predictions["true"] == predictions["predicted"]).mean() == pytest.approx(
        result["acc"]
    )
    probabilities = predictions[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    report = pd.read_csv(run / "classification_report.csv", index_col=0)
    assert report.loc["accuracy", "f1"] == pytest.approx(result["acc"])
    for name in ("confusion_matrix.png", "reliability_diagram.png", "metrics.json", "classification_report.md"):
        assert (run / name).is_file()
    assert (run / "report" / "test" / "reliability_diagram.png").is_file() and "test/ece" in metrics
    assert metrics["test/images_no_copy"] == 7 * 8 and not predictions["copy_in_train"].any()

    flipped = evaluate(make_cfg(f"ckpt_path={best}", "eval.tta=hflip", "eval.split=val", config="eval", fast=False))
    assert flipped["images"] == 7 * 8


def test_eval_errors_name_the_checkpoint(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ckpt_path=.*nothing.ckpt does not exist"):
        evaluate(make_cfg(f"ckpt_path={tmp_path / 'nothing.ckpt'}", config="eval", fast=False))
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="foreign.ckpt holds no fer-lightning config"):
        evaluate(make_cfg(f"ckpt_path={tmp_path / 'foreign.ckpt'}", config="eval", fast=False))


def test_tta_auto_picks_the_mode_with_the_best_val_accuracy_and_applies_it_to_test(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    val = {
        mode: evaluate(
            make_cfg(f"ckpt_path={trained_checkpoint}", f"eval.tta={mode}", "eval.split=val", config="eval", fast=False)
        )["acc"]
        for mode in ("none", "hflip", "tencrop")
    }
    chosen = max(val, key=lambda mode: (val[mode], -list(val).index(mode)))
    auto = evaluate(make_cfg(f"ckpt_path={trained_checkpoint}", "eval.tta=auto", config="eval", fast=False))
    saved = json.loads((tmp_path / "run" / "tta_on_val.json").read_text())
    assert saved["chosen"] == chosen and saved["val_accuracy"] == pytest.approx(val)
    test = evaluate(make_cfg(f"ckpt_path={trained_checkpoint}", f"eval.tta={chosen}", config="eval", fast=False))
    assert auto["acc"] == pytest.approx(test["acc"])


def test_report_of_a_set_without_neutral_and_with_train_copies_scores_each_group_as_sklearn(tmp_path: Path) -> None:
    images, _ = random_faces(69)
    train_labels = np.repeat(np.arange(7), 7)
    test_labels = np.arange(20) % 6  # no neutral in test
    test_images = images[49:].copy()
    test_images[:5] = images[[0, 8, 16, 24, 32]]  # exact copies of train faces, with the same labels
    write_folders(
        tmp_path / "data",
        np.concatenate([images[:49], test_images]),
        np.concatenate([train_labels, test_labels]),
        ["Training"] * 49 + ["PublicTest"] * 20,
    )
    datamodule = FERDataModule(str(tmp_path / "data"), cache_dir=None, num_workers=0, val_fraction=0.0)
    datamodule.setup("test")
    test = datamodule.splits["test"]
    copy = datamodule.copy_in_train("test")
    assert sorted(Path(s).name for s in test.sources[copy]) == [f"PublicTest_{49 + i}.png" for i in range(5)]

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(7), len(test)).astype(np.float32)
    probabilities[:3, 6] = 2  # three faces predicted neutral, a class the labels do not hold
    probabilities /= probabilities.sum(1, keepdims=True)
    out = tmp_path / "report"
    metrics = write_split_report(
        SplitPredictions("test", test.sources, test.labels, probabilities, copy), out, ReportSettings(15, 0, 0)
    )
    predicted = probabilities.argmax(1)
    present = list(range(6))
    assert metrics["f1"] == pytest.approx(
        f1_score(test.labels, predicted, labels=present, average="macro", zero_division=0)
    )
    for name, mask in (("copy_in_train", copy), ("no_copy", ~copy)):
        assert metrics[f"images_{name}"] == mask.sum()
        assert metrics[f"acc_{name}"] == pytest.approx((predicted[mask] == test.labels[mask]).mean())
        assert metrics[f"f1_{name}"] == pytest.approx(
            f1_score(
                test.labels[mask],
                predicted[mask],
                average="macro",
                labels=np.unique(test.labels[mask]),
                zero_division=0,
            )
        )
    assert metrics["ece"] == pytest.approx(expected_calibration_error(probabilities, test.labels, 15))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["absent_classes"] == ["neutral"] and saved["predicted_absent_neutral"] == (predicted == 6).sum() >= 3
    assert saved["classes_present"] == 6
    rows = pd.read_csv(out / "predictions.csv")
    np.testing.assert_array_equal(rows["copy_in_train"].to_numpy(), copy)
    text = (out / "classification_report.md").read_text()
    assert f"Classes absent from the true labels: neutral (predicted {(predicted == 6).sum()} times)" in text
    assert (
        "## Leakage" in text and "## Calibration" in text and (out / "reliability_diagram.png").stat().st_size > 10_000
    )


def test_eval_calibrate_fits_a_temperature_on_val_and_reports_ece_before_and_after(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(*SMALL_CNN, "trainer.max_epochs=2"))  # its own run: test=false runs trip in dashboards.log_hparams
    run = tmp_path / "run"
    metrics = evaluate(
        make_cfg(f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "eval.calibrate=true", config="eval", fast=False)
    )
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["temperature"] == pytest.approx(metrics["temperature"]) and metrics["temperature"] > 0
    rows = pd.read_csv(run / "predictions.csv")
    probabilities, true = rows[[f"p_{e}" for e in EMOTIONS]].to_numpy(), rows["true"].map(EMOTIONS.index).to_numpy()
    assert metrics["ece"] == pytest.approx(expected_calibration_error(probabilities, true, 15), abs=1e-4)
    calibrated = apply_temperature(probabilities, metrics["temperature"])
    assert metrics["ece_calibrated"] == pytest.approx(expected_calibration_error(calibrated, true, 15), abs=1e-4)
    assert metrics["images_copy_in_train"] == 0 and metrics["images_no_copy"] == len(rows)
    assert "Temperature fitted on val" in (run / "classification_report.md").read_text()
    stored = read_checkpoint(run / "checkpoints" / "last.ckpt")  # for predict and export (tests/test_serving.py)
    assert stored[TEMPERATURE_KEY] == pytest.approx(metrics["temperature"])
    assert (run / "gradcam.png").stat().st_size > 10_000
