"""The eval report agrees with sklearn, and evaluating a trained checkpoint reproduces its logged test accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import classification_report as sklearn_report

from fer_lightning.classes import EMOTIONS
from fer_lightning.eval import evaluate
from fer_lightning.inference import tta_views
from fer_lightning.reports import classification_report
from fer_lightning.train import train
from tests.conftest import SMALL_CNN


def test_report_numbers_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 7, 300)
    predicted = np.where(rng.random(300) < 0.6, true, rng.integers(0, 7, 300))
    predicted[predicted == 1] = 2  # disgust never predicted: precision 0, as sklearn's zero_division=0
    ours = classification_report(true, predicted)
    theirs = sklearn_report(true, predicted, labels=range(7), target_names=list(EMOTIONS), output_dict=True, zero_division=0)
    for row in [*EMOTIONS, "macro avg", "weighted avg"]:
        for ours_col, theirs_col in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"), ("support", "support")):
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


def test_eval_of_a_trained_checkpoint_reproduces_its_test_accuracy_and_writes_every_file(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg(*SMALL_CNN, "trainer.max_epochs=2", "data.synthetic.train=40"))
    run = tmp_path / "run"
    best = json.loads((run / "metrics.json").read_text())["best_checkpoint"]
    for split in ("val", "test"):  # the end-of-training report
        assert (run / "report" / split / "classification_report.md").is_file()
    assert metrics["best/test_accuracy"] == pytest.approx(metrics["test/acc"], abs=1e-6)

    eval_cfg = make_cfg(f"ckpt_path={best}", config="eval", fast=False)
    result = evaluate(eval_cfg)
    assert result["accuracy"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 7 * 8 and (predictions["true"] == predictions["predicted"]).mean() == pytest.approx(result["accuracy"])
    probabilities = predictions[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    report = pd.read_csv(run / "classification_report.csv", index_col=0)
    assert report.loc["accuracy", "f1"] == pytest.approx(result["accuracy"])
    for name in ("confusion_matrix.png", "metrics.json", "classification_report.md"):
        assert (run / name).is_file()

    flipped = evaluate(make_cfg(f"ckpt_path={best}", "eval.tta=hflip", "eval.split=val", config="eval", fast=False))
    assert flipped["images"] == 7 * 8


def test_eval_errors_name_the_checkpoint(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ckpt_path=.*nothing.ckpt does not exist"):
        evaluate(make_cfg(f"ckpt_path={tmp_path / 'nothing.ckpt'}", config="eval", fast=False))
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="foreign.ckpt holds no fer-lightning config"):
        evaluate(make_cfg(f"ckpt_path={tmp_path / 'foreign.ckpt'}", config="eval", fast=False))
