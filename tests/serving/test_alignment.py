"""predict.align=true: the eyes found on a detector's box level a tilted face before the crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning import EmotionRecognizer
from fer_lightning.serving.faces import Box, crop_face
from fer_lightning.serving.predict import draw_saliency, predict
from tests.conftest import draw_portrait, in_colour

CENTRE = (200, 210)


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """The photo turned counter-clockwise about the face's centre."""
    return cv2.warpAffine(
        image, cv2.getRotationMatrix2D(CENTRE, degrees, 1.0), image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE
    )


def test_a_turned_crop_is_the_upright_face() -> None:
    upright = cv2.GaussianBlur(np.random.default_rng(0).uniform(0, 255, (400, 400)).astype(np.uint8), (0, 0), 4)
    box = Box(150, 160, 100, 100)
    assert np.array_equal(
        crop_face(upright, box, 0.0, 0.0), cv2.resize(upright[160:260, 150:250], (48, 48), interpolation=cv2.INTER_AREA)
    )
    tilted = turned(upright, -20)
    straightened = crop_face(tilted, box, 0.0, 20).astype(float)
    expected = crop_face(upright, box, 0.0).astype(float)
    inner = np.s_[8:40, 8:40]  # the corners of the turned square come from outside the face's square
    assert (
        np.abs(straightened - expected)[inner].mean() < 2 < np.abs(crop_face(tilted, box, 0.0) - expected)[inner].mean()
    )


@pytest.mark.parametrize("degrees", [-20, 15])
def test_align_levels_the_eyes_of_a_tilted_face(trained_checkpoint: Path, degrees: float) -> None:
    photo = in_colour(draw_portrait(400, 400, CENTRE, 180))
    aligned = EmotionRecognizer.from_checkpoint(trained_checkpoint, detector="ssd", overrides=["align=true"])
    plain = EmotionRecognizer.from_checkpoint(trained_checkpoint, detector="ssd")
    [upright] = plain.find_faces(photo)
    [level] = aligned.find_faces(turned(photo, degrees))
    [tilted] = plain.find_faces(turned(photo, degrees))
    assert (
        level.angle == pytest.approx(-degrees, abs=5)
        and tilted.angle == 0.0
        and abs(aligned.find_faces(photo)[0].angle) < 5
    )
    difference = lambda face: np.abs(face.face.astype(float) - upright.face.astype(float)).mean()  # noqa: E731
    assert difference(level) < 0.6 * difference(tilted)  # the levelled crop is much closer to the upright face


def test_align_levels_a_face_crop_given_without_detection(trained_checkpoint: Path) -> None:
    crop = turned(in_colour(draw_portrait(400, 400, CENTRE, 180)), 15)[80:340, 70:330]  # the face fills it
    [face] = EmotionRecognizer.from_checkpoint(
        trained_checkpoint, overrides=["detect_faces=false", "align=true"]
    ).find_faces(crop)
    assert face.box == (0, 0, 260, 260) and face.angle == pytest.approx(-15, abs=5)


def test_a_turned_faces_map_is_turned_back_onto_the_photo() -> None:
    heat = np.zeros((48, 48), np.float32)
    heat[:8] = 1.0  # the top of the levelled face
    photo = np.full((100, 100, 3), 128, np.uint8)
    drawn = draw_saliency(photo.copy(), Box(0, 0, 100, 100), heat, 1.0, angle=90.0)
    changed = np.abs(drawn.astype(int) - photo).sum(axis=2) > 0
    # The face was turned 90 degrees counter-clockwise to level it: its top lies on the photo's right edge.
    assert changed[30:70, 85:].all() and not changed[:, :50].any()


def test_align_without_the_landmark_model_says_what_to_install(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), draw_portrait(300, 300, (150, 150), 120))
    with pytest.raises(
        ModuleNotFoundError,
        match=r"^predict.align=true needs the package no_such_package for its model "
        r"file onet.onnx: pip install -e '\.\[detect\]'$",
    ):
        predict(
            make_cfg(
                f"ckpt_path={trained_checkpoint}",
                f"input={photo}",
                "predict.align=true",
                "predict.aligner.package=no_such_package",
                config="predict",
                fast=False,
            )
        )
