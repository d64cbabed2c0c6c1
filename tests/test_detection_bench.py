"""The detection benchmark scores boxes against the true face square, on the faces of the subset it is given."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from fer_lightning.detection_bench import images, measure
from fer_lightning.detectors import SsdDetector
from fer_lightning.faces import Box
from fer_lightning.recognizer import build_detector, predict_settings


@pytest.fixture
def cfg(tmp_path: Path):
    for index in range(6):
        (tmp_path / "happy").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "happy" / f"{index}.jpg"), np.full((48, 48), 40 * index, np.uint8))
    return OmegaConf.create({"faces": str(tmp_path), "step": 2, "offset": 0, "seed": 1, "tight_side": 96,
                             "scene_size": [200, 160], "scene_face_sides": [40, 60], "angle": 20.0, "min_iou": 0.3})


def test_found_needs_a_box_on_the_face_and_a_box_elsewhere_is_counted_apart(cfg) -> None:
    truths = {kind: [box for _, box in images(kind, cfg)] for kind in ("tight", "scene")}
    assert len(truths["scene"]) == 3  # faces 0, 2, 4
    cfg.offset = 1
    assert [b for _, b in images("scene", cfg)] != truths["scene"]  # faces 1, 3, 5: another subset
    cfg.offset = 0
    queue = list(truths["scene"])
    on_face = measure(lambda image: [queue.pop(0)], "scene", cfg)
    assert on_face.startswith("100.0% / 0.0% / 0.0% / 1.00 / ")
    elsewhere = measure(lambda image: [Box(0, 0, 5, 5)], "scene", cfg)
    assert elsewhere.startswith("0.0% / 100.0% / 0.0% / ")
    assert measure(lambda image: [], "tight", cfg).startswith("0.0% / 0.0% / 0.0% / 0.00 / ")


def test_the_ssd_tries_its_next_input_size_only_where_nothing_was_found(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = build_detector(predict_settings("ssd", ["detector.input_sizes=[300,200]", "detector.pads=[0.0]"]).detector)
    sides: list[int] = []
    monkeypatch.setattr(SsdDetector, "search", lambda self, image, side: sides.append(side) or [])
    assert detector(np.zeros((100, 100, 3), np.uint8)) == [] and sides == [300, 200]
    with pytest.raises(ValueError, match="input_sizes: give at least one"):
        build_detector(predict_settings("ssd", ["detector.input_sizes=[]"]).detector)
