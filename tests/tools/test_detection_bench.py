"""The detection benchmark scores boxes against the true face square, on the faces of the subset it is given."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.serving.detectors import SsdDetector
from fer_lightning.serving.faces import Box, FoundFace
from fer_lightning.serving.recognizer import build_detector, predict_settings
from fer_lightning.tools.detection_bench import bench_settings, images, measure


@pytest.fixture
def cfg(tmp_path: Path):
    for index in range(6):
        (tmp_path / "happy").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "happy" / f"{index}.jpg"), np.full((48, 48), 40 * index, np.uint8))
    return OmegaConf.create(
        {
            "faces": str(tmp_path),
            "step": 2,
            "offset": 0,
            "seed": 1,
            "tight_side": 96,
            "scene_size": [200, 160],
            "scene_face_sides": [40, 60],
            "angle": 20.0,
            "min_iou": 0.3,
        }
    )


def test_found_needs_a_box_on_the_face_and_a_box_elsewhere_is_counted_apart(cfg) -> None:
    truths = {kind: [sample.truth for sample in images(kind, cfg)] for kind in ("tight", "scene")}
    assert len(truths["scene"]) == 3  # faces 0, 2, 4
    cfg.offset = 1
    assert [sample.truth for sample in images("scene", cfg)] != truths["scene"]  # faces 1, 3, 5: another subset
    cfg.offset = 0
    blank = np.zeros((48, 48), np.uint8)
    queue = list(truths["scene"])
    on_face = measure(
        lambda image: [FoundFace(Box(0, 0, 5, 5), blank), FoundFace(queue.pop(0), blank + len(queue))], "scene", cfg
    )
    assert on_face.startswith("100.0% / 0.0% / 100.0% / 1.00 / ")  # found, with a second (false) box in each image
    elsewhere = measure(lambda image: [FoundFace(Box(0, 0, 5, 5), blank)], "scene", cfg)
    assert elsewhere.startswith("0.0% / 100.0% / 0.0% / ")
    assert measure(lambda image: [], "tight", cfg).startswith("0.0% / 0.0% / 0.0% / 0.00 / ")


def test_accuracy_is_read_on_the_face_that_covers_the_truth_against_its_folders_class(cfg) -> None:
    happy = EMOTIONS.index("happy")
    classified: list[list[int]] = []

    def classify(faces: list[np.ndarray]) -> np.ndarray:
        classified.append([int(face[0, 0]) for face in faces])
        return np.eye(len(EMOTIONS))[[happy if face[0, 0] == 2 else 0 for face in faces]]

    queue = [sample.truth for sample in images("scene", cfg)]
    decoy = np.full((48, 48), 9, np.uint8)  # the false box's face: never classified
    cell = measure(
        lambda image: [
            FoundFace(Box(0, 0, 5, 5), decoy),
            FoundFace(queue.pop(0), np.full((48, 48), len(queue), np.uint8)),
        ],
        "scene",
        cfg,
        classify,
    )
    assert classified == [[2, 1, 0]] and " / 33.3% acc (n=3)" in cell  # the face marked 2 is read as happy: 1 of 3
    assert measure(lambda image: [], "scene", cfg, classify).endswith(" / - acc (n=3)")  # nothing found: no score


def test_the_ssd_tries_its_next_input_size_only_where_nothing_was_found(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = build_detector(
        predict_settings("ssd", ["detector.input_sizes=[300,200]", "detector.pads=[0.0]"]).detector
    )
    sides: list[int] = []
    monkeypatch.setattr(SsdDetector, "search", lambda self, image, side: sides.append(side) or [])
    assert detector(np.zeros((100, 100, 3), np.uint8)) == [] and sides == [300, 200]
    with pytest.raises(ValueError, match="input_sizes: give at least one"):
        build_detector(predict_settings("ssd", ["detector.input_sizes=[]"]).detector)


def test_a_spec_sets_predicts_own_keys_and_the_detectors() -> None:
    settings = bench_settings("ssd:input_sizes=[300]:align=true:aligner.max_angle=30:detector.min_score=0.5")
    assert settings.align is True and settings.aligner.max_angle == 30 and list(settings.detector.input_sizes) == [300]
    assert settings.detector.min_score == 0.5
    assert bench_settings("haar").align is False


def test_a_face_folder_that_names_no_class_is_named_in_the_error(cfg) -> None:
    (Path(cfg.faces) / "happy").rename(Path(cfg.faces) / "HAPPY")  # another case is fine ...
    assert len(list(images("tight", cfg))) == 3
    (Path(cfg.faces) / "HAPPY").rename(Path(cfg.faces) / "smiles")  # ... a name of no class is not
    with pytest.raises(ValueError, match=r"smiles/0.jpg: its folder 'smiles' names none of the classes"):
        next(images("tight", cfg))
