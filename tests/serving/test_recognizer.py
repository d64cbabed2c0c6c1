"""The Python API, fer_lightning.EmotionRecognizer: the command line's numbers for arrays, PIL images and paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_lightning import EmotionRecognizer
from fer_lightning.core.classes import EMOTIONS
from fer_lightning.serving.predict import predict
from tests.conftest import PROBABILITIES, draw_portrait, in_colour


@pytest.mark.parametrize("detector", ["haar", "ssd"])
def test_the_api_gives_the_command_lines_numbers(
    make_cfg, trained_checkpoint: Path, tmp_path: Path, detector: str
) -> None:
    two = np.hstack([draw_portrait(300, 300, (150, 150), 120), draw_portrait(300, 300, (150, 150), 100, 190, 90)])
    colour, gray = tmp_path / "colour.png", tmp_path / "gray.png"
    cv2.imwrite(str(colour), in_colour(two))
    cv2.imwrite(str(gray), two)
    cli = {
        file: predict(
            make_cfg(
                f"ckpt_path={trained_checkpoint}",
                f"input={file}",
                f"predict.detector={detector}",
                config="predict",
                fast=False,
            )
        )[0]
        for file in (colour, gray)
    }
    recognizer = EmotionRecognizer.from_checkpoint(trained_checkpoint, detector=detector)

    inputs = {
        colour: [colour, str(colour), cv2.imread(str(colour)), Image.open(colour)],  # path, BGR array, PIL RGB
        gray: [gray, cv2.imread(str(gray), cv2.IMREAD_GRAYSCALE), Image.open(gray)],  # path, gray array, PIL L
    }
    for file, forms in inputs.items():
        expected = cli[file]
        assert len(expected) == 2
        for results in [*(recognizer.detect(form) for form in forms), *recognizer.detect_batch(forms)]:
            assert [face["box"] for face in results] == [
                tuple(row) for row in expected[["x", "y", "w", "h"]].to_numpy()
            ]
            probabilities = np.array([[face["emotions"][name] for name in EMOTIONS] for face in results])
            np.testing.assert_allclose(probabilities, expected[PROBABILITIES].to_numpy(), atol=1e-6)
            assert [face["top"][0] for face in results] == list(expected["emotion"])
            assert all(face["top"][1] == max(face["emotions"].values()) for face in results)


def test_last_settings_and_bad_input(trained_checkpoint: Path, tmp_path: Path) -> None:
    run = tmp_path / "outputs" / "train" / "runs" / "a" / "checkpoints"
    run.mkdir(parents=True)
    (run / "last.ckpt").symlink_to(trained_checkpoint)
    crops = EmotionRecognizer.from_checkpoint(
        "last", root=tmp_path / "outputs", overrides=["detect_faces=false", "device=cpu"]
    )
    face = np.full((48, 48), 90, np.uint8)

    assert crops.detector is None and str(crops.device) == "cpu"
    assert crops.detect(face)[0]["box"] == (0, 0, 48, 48) and crops.detect_batch([]) == []
    assert EmotionRecognizer.from_checkpoint(trained_checkpoint).detect(np.full((200, 200, 3), 128, np.uint8)) == []
    with pytest.raises(TypeError, match="expected a path, a PIL image or a uint8 array"):
        crops.detect(face.astype(np.float32))
    with pytest.raises(FileNotFoundError, match="missing.jpg: no such file"):  # not "not an image OpenCV can read"
        crops.detect(tmp_path / "missing.jpg")
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg: not an image OpenCV can read"):
        crops.detect(tmp_path / "notes.jpg")
    with pytest.raises(FileNotFoundError, match=r"^images\[2\]: .*missing.jpg: no such file"):  # which item
        crops.detect_batch([face, face, tmp_path / "missing.jpg"])
    with pytest.raises(TypeError, match=r"^images\[1\]: expected a path"):
        crops.detect_batch([face, face.astype(np.float32)])
    # A whole image below predict.min_face_side is no face (a 1x1 image is not stretched into one), said why.
    assert crops.detect(np.full((1, 1), 90, np.uint8)) == []
    assert "smaller than predict.min_face_side=24" in crops.too_small(np.full((1, 1), 90, np.uint8))


def test_importing_the_package_does_not_import_the_recognizer() -> None:
    code = (
        "import sys, fer_lightning; "
        "assert 'fer_lightning.serving.recognizer' not in sys.modules and 'cv2' not in sys.modules; "
        "from fer_lightning import EmotionRecognizer; print(EmotionRecognizer.__module__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fer_lightning.serving.recognizer"
