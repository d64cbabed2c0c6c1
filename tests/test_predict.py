"""Prediction on new photos: crops match the model's own forward pass, faces are found, bad files are listed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from fer_lightning.checkpoints import load_classifier
from fer_lightning.classes import EMOTIONS
from fer_lightning.data.synthetic import EXPRESSIONS, _draw_face, make_synthetic_faces
from fer_lightning.data.transforms import build_transform
from fer_lightning.predict import predict


def photo_with_face(rng: np.random.Generator, size: int = 400) -> np.ndarray:
    """A synthetic face drawn large (240 px) on a plain background, as in a photo."""
    face = cv2.resize(_draw_face(dict(EXPRESSIONS["happy"]), rng), (240, 240)).clip(0, 255).astype(np.uint8)
    canvas = np.full((size, size), 200, np.uint8)
    canvas[80:320, 100:340] = face
    return cv2.GaussianBlur(canvas, (0, 0), 2)


def test_predictions_on_crops_match_the_models_forward_pass(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    faces, _ = make_synthetic_faces(2, np.random.default_rng(3))
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, face in enumerate(faces):
        cv2.imwrite(str(folder / f"face_{i:02d}.png"), face)
    table = predict(make_cfg(f"ckpt_path={trained_checkpoint}", f"input={folder}", "predict.detect_faces=false",
                             config="predict", fast=False))
    model, cfg = load_classifier(trained_checkpoint)
    transform = build_transform(cfg.data.image_size, cfg.data.mean, cfg.data.std)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(torch.stack([transform(image=f)["image"] for f in faces])).float().softmax(-1).numpy()
    got = table.sort_values("file")[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert list(table.sort_values("file")["emotion"]) == [EMOTIONS[i] for i in expected.argmax(1)]


def test_a_face_in_a_photo_is_found_and_bad_files_are_listed(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "portrait.jpg"), photo_with_face(rng))
    cv2.imwrite(str(folder / "wall.png"), np.full((300, 300), 128, np.uint8))  # no face
    (folder / "notes.txt").write_text("not an image")
    cfg = make_cfg(f"ckpt_path={trained_checkpoint}", f"input={folder}", config="predict", fast=False)
    table = predict(cfg)
    out = Path(cfg.paths.output_dir)

    assert list(table["file"].map(lambda f: Path(f).name)) == ["portrait.jpg"]
    box = table.iloc[0]
    assert 60 <= box.x <= 160 and 40 <= box.y <= 140 and 150 <= box.w <= 320  # around the drawn face
    skipped = pd.read_csv(out / "skipped.csv")
    assert dict(zip(skipped["file"].map(lambda f: Path(f).name), skipped["reason"])) == {
        "notes.txt": "not an image", "wall.png": "no face found"}
    saved = json.loads((out / "predictions.json").read_text())
    assert len(saved["predictions"]) == 1 and len(saved["skipped"]) == 2
    annotated = cv2.imread(str(out / "annotated" / "portrait.png"))
    original = cv2.imread(str(folder / "portrait.jpg"))
    assert annotated.shape == original.shape and (np.abs(annotated.astype(int) - original).sum(-1) > 60).sum() > 500


def test_missing_input_is_named(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="input=.*nowhere does not exist"):
        predict(make_cfg(f"ckpt_path={trained_checkpoint}", f"input={tmp_path / 'nowhere'}", config="predict", fast=False))
