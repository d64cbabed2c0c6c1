"""python -m fer_lightning.predict: emotions of the faces in new photos, as tables and annotated images."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from fer_lightning.checkpoints import load_classifier
from fer_lightning.classes import EMOTIONS
from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.readers import IMAGE_SUFFIXES
from fer_lightning.data.transforms import build_transform
from fer_lightning.evaluation import predict_probabilities
from fer_lightning.faces import Box, FaceDetector, as_face, crop_face
from fer_lightning.files import write_atomically, write_csv, write_json

log = logging.getLogger(__name__)


def input_files(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"input={path} does not exist: give an image or a folder of images")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"input={path} is an empty folder")
    return files


def find_faces(files: list[Path], cfg: DictConfig) -> tuple[list[tuple[Path, int, Box, np.ndarray]], list[dict]]:
    """(file, face index, box, 48x48 face) for every face found, and the files skipped with the reason."""
    detector = FaceDetector(cfg.cascade, cfg.scale_factor, cfg.min_neighbors, cfg.min_size) if cfg.detect_faces else None
    faces, skipped = [], []
    for file in files:
        gray = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            reason = "not an image" if file.suffix.lower() not in IMAGE_SUFFIXES else "unreadable image"
            skipped.append({"file": str(file), "reason": reason})
            continue
        if detector is None:
            faces.append((file, 0, Box(0, 0, gray.shape[1], gray.shape[0]), as_face(gray)))
            continue
        boxes = detector(gray)
        if not boxes:
            skipped.append({"file": str(file), "reason": "no face found"})
        faces += [(file, i, box, crop_face(gray, box, cfg.margin)) for i, box in enumerate(boxes)]
    return faces, skipped


def annotate(file: Path, rows: pd.DataFrame, out: Path, color: tuple[int, int, int]) -> None:
    image = cv2.imread(str(file), cv2.IMREAD_COLOR)
    side = max(image.shape[:2])
    thickness, font_scale = max(1, round(side / 300)), max(0.5, side / 600)
    for row in rows.itertuples():
        cv2.rectangle(image, (row.x, row.y), (row.x + row.w, row.y + row.h), color, thickness)
        label = f"{row.emotion} {getattr(row, f'p_{row.emotion}'):.2f}"
        cv2.putText(image, label, (row.x, max(row.y - 6, 16)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, thickness)
    write_atomically(out / f"{file.stem}.png", lambda tmp: cv2.imencode(".png", image)[1].tofile(str(tmp)))


def predict(cfg: DictConfig) -> pd.DataFrame:
    out = Path(cfg.paths.output_dir)
    model, trained = load_classifier(cfg.ckpt_path)
    faces, skipped = find_faces(input_files(Path(cfg.input)), cfg.predict)
    for item in skipped:
        log.warning("Skipped %s: %s", item["file"], item["reason"])
    transform = build_transform(trained.data.image_size, trained.data.mean, trained.data.std)
    batch = [(transform(image=face)["image"], -1) for *_, face in faces]
    probabilities = (
        predict_probabilities(model, DataLoader(batch, batch_size=cfg.predict.batch_size),
                              bf16=str(trained.trainer.precision).startswith("bf16"))[0]
        if batch else np.empty((0, len(EMOTIONS)))
    )
    table = pd.DataFrame({
        "file": [str(f) for f, *_ in faces], "face": [i for _, i, *_ in faces],
        "x": [b.x for _, _, b, _ in faces], "y": [b.y for _, _, b, _ in faces],
        "w": [b.w for _, _, b, _ in faces], "h": [b.h for _, _, b, _ in faces],
        "emotion": [EMOTIONS[i] for i in probabilities.argmax(1)] if len(faces) else [],
        **{f"p_{name}": probabilities[:, i] for i, name in enumerate(EMOTIONS)},
    })
    write_csv(table, out / "predictions.csv")
    write_csv(pd.DataFrame(skipped, columns=["file", "reason"]), out / "skipped.csv")
    write_json({"predictions": table.to_dict(orient="records"), "skipped": skipped}, out / "predictions.json")
    if cfg.predict.annotate:
        for file, rows in table.groupby("file"):
            annotate(Path(file), rows, out / "annotated", tuple(cfg.predict.box_color))
    log.info("%d faces in %d files (%d skipped) -> %s", len(table), table["file"].nunique(), len(skipped), out)
    return table


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    with torch.inference_mode():
        predict(cfg)


if __name__ == "__main__":
    main()
