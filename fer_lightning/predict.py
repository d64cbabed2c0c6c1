"""python -m fer_lightning.predict: the emotions of the faces in new images, as tables and annotated copies.

Faces go through exactly what eval uses: the checkpoint's own transform (image_size, mean, std), the
same Dataset and the same batched, autocast-matched forward pass; so on FER-2013's own 48x48 files with
``predict.detect_faces=false`` the labels are eval's labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import hydra
import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from PIL import Image, UnidentifiedImageError
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from fer_lightning.checkpoints import LoadedCheckpoint
from fer_lightning.classes import EMOTIONS
from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.datamodule import FaceDataset
from fer_lightning.data.readers import IMAGE_SUFFIXES, FaceRecords
from fer_lightning.inference import predict_probabilities
from fer_lightning.faces import Box, FaceDetector, as_face, crop_face, to_gray
from fer_lightning.files import write_atomically, write_csv, write_json

log = logging.getLogger(__name__)

SKIPPED_COLUMNS = ["file", "reason"]


@dataclass(frozen=True)
class Face:
    """One face to predict: where it came from, and the 48x48 uint8 gray face the model sees."""

    file: Path
    index: int  # faces of one image, left to right
    box: Box
    image: np.ndarray


def list_images(path: Path, recursive: bool) -> list[Path]:
    """The files to read, sorted; hidden files (.DS_Store and the like) are not looked at."""
    if not path.exists():
        raise FileNotFoundError(f"input={path} does not exist: give an image or a folder of images")
    if path.is_file():
        return [path]
    found = path.rglob("*") if recursive else path.iterdir()
    files = sorted(p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise FileNotFoundError(f"input={path} is a folder with no files{'' if recursive else ' (predict.recursive=false)'}")
    return files


def unreadable(file: Path) -> str | None:
    """Why an image cannot be used whole, as training's reader judges it (PIL): OpenCV decodes a truncated
    JPEG into a half-grey image without an error."""
    try:
        with Image.open(file) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as error:
        suffix = file.suffix.lower()
        return f"unreadable image ({error})" if suffix in IMAGE_SUFFIXES else "not an image"
    return None


def find_faces(files: list[Path], detector: FaceDetector | None, margin: float) -> tuple[list[Face], list[dict[str, str]]]:
    """Every face to predict, and the files skipped with the reason; ``detector=None``: each image is a face."""
    faces: list[Face] = []
    skipped: list[dict[str, str]] = []
    for file in files:
        problem = unreadable(file)
        image = cv2.imread(str(file), cv2.IMREAD_COLOR) if problem is None else None  # BGR, EXIF-oriented
        if image is None:
            reason = problem or ("unreadable image" if file.suffix.lower() in IMAGE_SUFFIXES else "not an image")
            skipped.append({"file": str(file), "reason": reason})
            continue
        gray = to_gray(image)
        if detector is None:
            faces.append(Face(file, 0, Box(0, 0, gray.shape[1], gray.shape[0]), as_face(gray)))
            continue
        boxes = detector(gray)
        if not boxes:
            skipped.append({"file": str(file), "reason": "no face found"})
        faces += [Face(file, i, box, crop_face(gray, box, margin)) for i, box in enumerate(boxes)]
    return faces, skipped


def predict_emotions(trained: LoadedCheckpoint, faces: list[Face], batch_size: int) -> np.ndarray:
    """(N, 7) probabilities, through eval's transform, Dataset and forward pass (bf16 if it trained so)."""
    if not faces:
        return np.empty((0, len(EMOTIONS)), np.float32)
    records = FaceRecords(
        np.stack([face.image for face in faces]),
        np.full(len(faces), -1, np.int64),
        np.full(len(faces), "predict"),
        np.array([str(face.file) for face in faces]),
    )
    loader = DataLoader(FaceDataset(records, trained.transform()), batch_size=batch_size)
    return predict_probabilities(trained.model, loader, autocast=trained.autocast())[0]


def prediction_table(faces: list[Face], probabilities: np.ndarray) -> pd.DataFrame:
    """One row per face: file, face, box x/y/w/h, emotion, then p_<emotion> in EMOTIONS order."""
    return pd.DataFrame({
        "file": [str(face.file) for face in faces],
        "face": [face.index for face in faces],
        "x": [face.box.x for face in faces],
        "y": [face.box.y for face in faces],
        "w": [face.box.w for face in faces],
        "h": [face.box.h for face in faces],
        "emotion": [EMOTIONS[i] for i in probabilities.argmax(1)],
        **{f"p_{name}": probabilities[:, i] for i, name in enumerate(EMOTIONS)},
    })


def annotated_path(file: Path, root: Path, out: Path, image_format: str | None) -> Path:
    """annotated/<the file's path under the input folder>, with ``.<image_format>`` appended when it is not
    already the suffix, so two inputs never share a copy."""
    relative = file.relative_to(root) if root.is_dir() else Path(file.name)
    if image_format and relative.suffix.lower() != f".{image_format.lower().lstrip('.')}":
        relative = relative.with_name(f"{relative.name}.{image_format.lstrip('.')}")
    return out / "annotated" / relative


def draw_predictions(image: np.ndarray, rows: pd.DataFrame, color: tuple[int, int, int], line_width: float) -> np.ndarray:
    """Each face's box, and "<emotion> <probability>" on a filled tag above it (inside it at the top edge)."""
    thickness = max(1, round(max(image.shape[:2]) * line_width))
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, 0.35 * thickness)  # text height ~ 7 strokes
    text_color = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    for row in rows.itertuples():
        cv2.rectangle(image, (row.x, row.y), (row.x + row.w, row.y + row.h), color, thickness)
        label = f"{row.emotion} {getattr(row, f'p_{row.emotion}'):.2f}"
        (width, height), baseline = cv2.getTextSize(label, font, font_scale, thickness)
        tag_height = height + baseline + thickness
        top = row.y - tag_height if row.y >= tag_height else row.y
        cv2.rectangle(image, (row.x, top), (row.x + width + thickness, top + tag_height), color, -1)
        cv2.putText(image, label, (row.x + thickness // 2, top + height + thickness // 2), font, font_scale, text_color,
                    thickness, cv2.LINE_AA)
    return image


def write_image(image: np.ndarray, path: Path) -> Path:
    """Encode by the path's suffix (PNG, with .png appended, when OpenCV cannot write that format)."""
    try:
        ok, encoded = cv2.imencode(path.suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        path = path.with_name(f"{path.name}.png")
        encoded = cv2.imencode(".png", image)[1]
    write_atomically(path, lambda tmp: tmp.write_bytes(encoded.tobytes()))
    return path


@torch.inference_mode()
def predict(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every face under ``cfg.input``; write the tables and annotated copies; return (predictions, skipped)."""
    out, root, settings = Path(cfg.paths.output_dir), Path(cfg.input).expanduser(), cfg.predict
    files = list_images(root, settings.recursive)
    trained = LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root)
    detector: FaceDetector | None = instantiate(settings.detector) if settings.detect_faces else None
    faces, skipped = find_faces(files, detector, settings.margin)
    for item in skipped:
        log.warning("Skipped %s: %s", item["file"], item["reason"])
    probabilities = predict_emotions(trained, faces, settings.batch_size or trained.config.data.batch_size)
    table = prediction_table(faces, probabilities)
    skipped_table = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)

    write_csv(table, out / "predictions.csv")
    write_csv(skipped_table, out / "skipped.csv")
    write_json({
        "checkpoint": str(trained.path), "input": str(root), "classes": list(EMOTIONS),
        "predictions": table.to_dict(orient="records"), "skipped": skipped,
    }, out / "predictions.json")
    if settings.annotate:
        for file, rows in table.groupby("file", sort=False):
            image = cv2.imread(file, cv2.IMREAD_COLOR)
            drawn = draw_predictions(image, rows, tuple(settings.box_color), settings.line_width)
            write_image(drawn, annotated_path(Path(file), root, out, settings.annotated_format))
    log.info("%d faces in %d of %d files (%d skipped) -> %s", len(table), table["file"].nunique(), len(files),
             len(skipped), out)
    return table, skipped_table


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
