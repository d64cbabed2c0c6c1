"""The metrics the module logs, checked against values worked out by hand."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from fer_lightning.evaluation.reports import classification_report, present_classes
from fer_lightning.models.classifier import EmotionClassifier


class PassThrough(nn.Module):
    """A 'net' whose input is its logits, so the test chooses every prediction."""

    def __init__(self, **_: object) -> None:
        super().__init__()
        self.backbone = nn.Identity()
        self.head = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x


def test_logged_test_metrics_equal_hand_computed_values() -> None:
    # (true, predicted) pairs over classes 0 angry, 1 disgust, 3 happy; the other classes never occur.
    pairs = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 0), (3, 3), (3, 3), (3, 3), (3, 0), (3, 1)]
    true = torch.tensor([t for t, _ in pairs])
    logits = torch.nn.functional.one_hot(torch.tensor([p for _, p in pairs]), 7).float()
    model = EmotionClassifier(net=PassThrough, optimizer=partial(torch.optim.SGD), channels_last=False)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.test(model, DataLoader(TensorDataset(logits, true), batch_size=4))
    got = {k: float(v) for k, v in trainer.callback_metrics.items()}

    # By hand. angry: TP 2, predicted 4 (rows 0,0,1->0,3->0), true 3. disgust: TP 1, predicted 3, true 2.
    # happy: TP 3, predicted 3, true 5. Macro averages run over the classes present in the labels (as the
    # report's do: one definition), here the three.
    precision = {"angry": 2 / 4, "disgust": 1 / 3, "happy": 3 / 3}
    recall = {"angry": 2 / 3, "disgust": 1 / 2, "happy": 3 / 5}
    f1 = {c: 2 * precision[c] * recall[c] / (precision[c] + recall[c]) for c in precision}
    assert got["test/acc"] == pytest.approx(6 / 10)
    assert got["test/precision"] == pytest.approx(sum(precision.values()) / 3)
    assert got["test/recall"] == pytest.approx(sum(recall.values()) / 3)
    assert got["test/f1"] == pytest.approx(sum(f1.values()) / 3)
    report = classification_report(true.numpy(), logits.argmax(1).numpy(), present_classes(true.numpy()))
    for name in ("precision", "recall", "f1"):
        assert got[f"test/{name}"] == pytest.approx(report.loc["macro avg", name])
    for emotion, value in f1.items():
        assert got[f"test/f1_{emotion}"] == pytest.approx(value)
    assert got["test/f1_fear"] == 0.0
