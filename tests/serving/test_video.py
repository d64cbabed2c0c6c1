"""Prediction on video: per-frame rows, an annotated copy, every n-th frame, on a clip the test writes itself.
(A camera, ``input=0``, cannot be tested here: this machine has none.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.serving.predict import predict
from tests.conftest import PROBABILITIES, draw_portrait, in_colour

FPS, FRAMES, NO_FACE = 10.0, 12, (4, 5)  # frames 4 and 5 show only the background


def write_clip(path: Path, codec: str = "mp4v") -> list[np.ndarray]:
    """A 320x240 clip of a drawn face moving right (a plain background on the NO_FACE frames); its frames."""
    frames = []
    for i in range(FRAMES):
        gray = np.full((240, 320), 200, np.uint8) if i in NO_FACE else draw_portrait(240, 320, (100 + 10 * i, 120), 100)
        frames.append(in_colour(gray))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), FPS, (320, 240))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return frames


@pytest.fixture
def video_cfg(make_cfg, trained_checkpoint: Path) -> Callable[..., DictConfig]:
    return lambda input, *overrides: make_cfg(
        f"ckpt_path={trained_checkpoint}",
        f"input={input}",
        "predict.progress_bar=false",
        *overrides,
        config="predict",
        fast=False,
    )


@pytest.mark.parametrize("detector", ["haar", "ssd"])
def test_a_clip_gives_rows_per_frame_and_an_annotated_copy(video_cfg, tmp_path: Path, detector: str) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    cfg = video_cfg(
        clip, f"predict/detector={detector}", "predict.line_width=0.02"
    )  # 6 px: survives mp4v's compression

    table, skipped = predict(cfg)

    out = Path(cfg.paths.output_dir)
    with_face = [i for i in range(FRAMES) if i not in NO_FACE]
    assert list(table["frame"]) == with_face and (table["face"] == 0).all() and (table["file"] == str(clip)).all()
    np.testing.assert_allclose(table["time"], np.array(with_face) / FPS)
    centres = (table["x"] + table["w"] / 2).to_numpy()
    np.testing.assert_allclose(centres, [100 + 10 * i for i in with_face], atol=25)  # the box follows the face
    assert list(table["emotion"]) == [EMOTIONS[i] for i in table[PROBABILITIES].to_numpy().argmax(1)]
    assert list(skipped["frame"]) == list(NO_FACE) and set(skipped["reason"]) == {"no face found"}

    saved = pd.read_csv(out / "predictions.csv")
    assert list(saved.columns) == ["file", "frame", "time", "face", "x", "y", "w", "h", "emotion", *PROBABILITIES]
    annotated = cv2.VideoCapture(str(out / "annotated" / "clip.mp4"))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES and annotated.get(cv2.CAP_PROP_FPS) == FPS
    ok, first = annotated.read()
    row = table.iloc[0]
    assert ok and first.shape == (240, 320, 3)
    assert np.abs(first[row.y + row.h, row.x + row.w // 2].astype(int) - cfg.predict.box_color).max() < 40  # the box
    assert not list(out.glob("annotated/.*partial*"))


def test_every_n_frames_and_max_frames(video_cfg, tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    write_clip(clip, codec="MJPG")  # any container OpenCV reads
    cfg = video_cfg(
        clip,
        "predict.every_n_frames=3",
        "predict.max_frames=10",
        "predict.video_format=avi",
        "predict.video_codec=MJPG",
    )

    table, skipped = predict(cfg)

    assert list(table["frame"]) == [0, 3, 6, 9] and skipped.empty
    annotated = cv2.VideoCapture(str(Path(cfg.paths.output_dir) / "annotated" / "clip.avi"))
    assert annotated.get(cv2.CAP_PROP_FRAME_COUNT) == 10  # every frame is written, the latest prediction drawn
    with pytest.raises(ValueError, match="predict.every_n_frames=0"):
        predict(video_cfg(clip, "predict.every_n_frames=0"))


def test_a_video_inside_a_folder_is_named_not_read_as_an_image(video_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_clip(folder / "clip.mp4")
    cv2.imwrite(str(folder / "photo.png"), draw_portrait(300, 300, (150, 150), 120))

    table, skipped = predict(video_cfg(folder))

    assert list(table["file"].map(lambda f: Path(f).name)) == ["photo.png"]
    assert list(skipped["reason"]) == ["a video: give it alone as input="]
