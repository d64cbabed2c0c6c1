"""What a split's report is made from (a model's predictions on the split, in its order) and how it is drawn (the
report settings of conf/report/): shared by training's end-of-run report and eval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_lightning.data.datamodule import FERDataModule


@dataclass(frozen=True)
class SplitPredictions:
    """A split as a model saw it, in the split's order: what every report is made from (training's end-of-run report
    and eval's alike), so the faces go through the net once."""

    split: str
    sources: np.ndarray  # each face's file (or CSV row)
    true: np.ndarray  # class indices
    probabilities: np.ndarray  # (N, 7)
    copy_in_train: np.ndarray | None = None  # per face: an exact pixel copy of it sits in the train split
    faces: np.ndarray | None = None  # the uint8 faces: for the misclassified and Grad-CAM figures (None: neither)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(1)


@dataclass(frozen=True)
class ReportSettings:
    """conf/report/default.yaml: one set for train's reports and eval's."""

    ece_bins: int  # equal-width confidence bins of the ECE and the reliability diagram
    misclassified_per_class: int  # the most confidently wrong faces per true class (0: no such figure)
    saliency_per_class: int  # Grad-CAM of this many right and wrong faces per class (0: none)


def split_predictions(
    datamodule: FERDataModule, split: str, probabilities: np.ndarray, true: np.ndarray, with_faces: bool = True
) -> SplitPredictions:
    """``split``'s predictions with what the datamodule knows of its faces, taken for the first ``len(true)`` of them:
    a run limited by ``limit_test_batches`` reports on the faces it tested. ``with_faces=False``: no face figures."""
    records, n = datamodule.splits[split], len(true)
    faces = records.images[:n] if with_faces else None
    return SplitPredictions(split, records.sources[:n], true, probabilities, datamodule.copy_in_train(split)[:n], faces)
