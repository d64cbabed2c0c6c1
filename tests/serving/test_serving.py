"""What serving a trained model adds: the compact default-model file, a stored temperature, Grad-CAM per face."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_lightning.core import hardware, runs
from fer_lightning.core.checkpoints import CONFIG_KEY, TEMPERATURE_KEY, read_checkpoint, store_temperature
from fer_lightning.data.synthetic import make_synthetic_faces
from fer_lightning.evaluation.calibration import apply_temperature
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.export import export, serving_model
from fer_lightning.serving.faces import Box, face_square
from fer_lightning.serving.predict import predict
from fer_lightning.serving.recognizer import EmotionRecognizer
from tests.conftest import draw_portrait, in_colour


def faces(n: int = 12) -> np.ndarray:
    return make_synthetic_faces(2, np.random.default_rng(5))[0][:n]


def recognizer(ckpt_path: Path | None) -> EmotionRecognizer:
    return EmotionRecognizer.from_checkpoint(ckpt_path, overrides=["detect_faces=false", "device=cpu"])


def test_the_compact_file_is_small_half_precision_and_predicts_as_the_checkpoint(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    file = export(
        make_cfg(
            f"ckpt_path={trained_checkpoint}",
            "export.format=weights",
            f"export.file={tmp_path / 'model.pt'}",
            config="export",
            fast=False,
        )
    )
    assert file.stat().st_size < trained_checkpoint.stat().st_size / 2
    stored = read_checkpoint(file)
    assert stored["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert {v.dtype for v in stored["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    assert "optimizer_states" not in stored and not list(file.parent.glob("*.classes.json"))
    assert stored[CONFIG_KEY]["data"]["root"] == "${oc.env:FER_DATA_ROOT,data/fer2013}"  # no path of this machine
    expected = recognizer(trained_checkpoint).probabilities(faces())
    got = recognizer(file).probabilities(faces())
    np.testing.assert_allclose(got, expected, atol=1e-2)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_without_ckpt_path_the_released_default_model_is_used_and_said(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runs, "DEFAULT_MODEL", tmp_path / "weights" / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no released default model.*give ckpt_path="):
        LoadedCheckpoint.load(None)
    released = tmp_path / "weights" / "default.pt"
    released.parent.mkdir()
    shutil.copy(trained_checkpoint, released)
    monkeypatch.setattr(runs, "DEFAULT_MODEL", released)
    with caplog.at_level(logging.INFO, logger="fer_lightning.core.runs"):
        loaded = LoadedCheckpoint.load(None, device="cpu")
    assert loaded.path == released and loaded.is_default_model
    assert f"ckpt_path not given: using the released default model {released}" in caplog.text


@pytest.mark.parametrize("native_bf16", [False, True], ids=["cpu_without_bf16", "cpu_with_bf16"])
def test_a_stored_temperature_is_applied_by_the_api_and_by_export(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_bf16: bool
) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_hardware", lambda: (native_bf16, "patched"))
    ckpt = tmp_path / "calibrated.ckpt"
    checkpoint = read_checkpoint(trained_checkpoint)
    checkpoint[CONFIG_KEY]["trainer"]["precision"] = "bf16-mixed"  # as trained on a CPU with bf16
    torch.save(checkpoint, ckpt)
    raw = recognizer(ckpt).probabilities(faces())
    store_temperature(ckpt, 2.5)
    assert read_checkpoint(ckpt)[TEMPERATURE_KEY] == 2.5
    scaled = recognizer(ckpt).probabilities(faces())
    np.testing.assert_allclose(scaled, apply_temperature(raw, 2.5), atol=1e-5)
    assert (scaled.max(1) < raw.max(1)).all() and (scaled.argmax(1) == raw.argmax(1)).all()  # softer, same answers
    serving = serving_model(LoadedCheckpoint.load(ckpt, device="cpu"))
    with torch.no_grad():
        served = serving(torch.from_numpy(faces()[:, None].astype(np.float32))).numpy()
    # Export runs fp32; the API runs bf16 only where the CPU computes it natively (a bf16 rounding apart).
    np.testing.assert_allclose(served, scaled, atol=1e-2 if native_bf16 else 1e-5)
    assert native_bf16 or (served.argmax(1) == scaled.argmax(1)).all()


def test_explain_writes_each_faces_gradcam_over_the_photo(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    photo = tmp_path / "in" / "photo.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), in_colour(draw_portrait(300, 400, (200, 150), 120)))
    table, _ = predict(
        make_cfg(
            f"ckpt_path={trained_checkpoint}",
            f"input={photo.parent}",
            "predict.explain=true",
            config="predict",
            fast=False,
        )
    )
    out = tmp_path / "run"
    explained, annotated = (cv2.imread(str(out / folder / "photo.png")) for folder in ("explained", "annotated"))
    assert len(table) == 1 and explained.shape == annotated.shape == (300, 400, 3)
    row = table.iloc[0]
    square = face_square(Box(row.x, row.y, row.w, row.h), 0.0)  # the square the face was cut from (margin 0)
    changed = np.abs(explained.astype(int) - annotated.astype(int)).sum(2) > 0
    inside = np.zeros_like(changed)
    inside[max(0, square.y) : square.y + square.h, max(0, square.x) : square.x + square.w] = True
    assert changed[inside].mean() > 0.05 and not changed[~inside].any()  # the map is laid over the face only


def test_saliency_maps_cover_only_the_centre_crop_the_net_sees(make_cfg, tmp_path: Path) -> None:
    from fer_lightning.training.run import train
    from tests.conftest import SMALL_CNN

    train(make_cfg(*SMALL_CNN, "data.crop_size=40", "test=false"))
    found = recognizer(tmp_path / "run" / "checkpoints" / "last.ckpt")
    maps = found.saliency(faces(4), np.arange(4))
    assert maps.shape == (4, 48, 48) and maps.min() >= 0 and maps.max() <= 1
    assert not maps[:, :4].any() and not maps[:, :, -4:].any() and maps[:, 4:44, 4:44].any()


@pytest.mark.skipif(not runs.DEFAULT_MODEL.is_file(), reason="no released default model in this checkout")
def test_the_released_default_model_predicts_out_of_the_box(tmp_path: Path) -> None:
    assert runs.DEFAULT_MODEL.stat().st_size <= 4_000_000
    assert (runs.DEFAULT_MODEL.parent / "README.md").is_file()  # its model card
    released = recognizer(None)
    assert released.trained.is_default_model and released.trained.temperature > 0
    probabilities = released.probabilities(faces(7))
    assert probabilities.shape == (7, 7) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), in_colour(draw_portrait(300, 300, (150, 150), 120)))
    found = EmotionRecognizer.from_checkpoint(overrides=["device=cpu"]).detect(photo)
    assert len(found) == 1 and found[0]["top"][0] in found[0]["emotions"]
