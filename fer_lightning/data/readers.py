"""Readers for the two real FER-2013 formats, both decoded into one in-memory form.

Kaggle's ``fer2013.csv`` (emotion,pixels,Usage) and the image-folder re-upload
(``train/<class>/*.jpg``, ``test/<class>/*.jpg``) hold the same faces; both readers return
``FaceRecords`` so that the same face gets the same label and the same split either way.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from fer_lightning.classes import EMOTIONS, NUM_CLASSES

FACE_SIZE = 48
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff")
CSV_USAGES = ("Training", "PublicTest", "PrivateTest")
# The folder re-upload keeps the CSV's split in each file name: Training_123.jpg, PublicTest_45.jpg.
_ORIGIN_IN_NAME = re.compile(r"^(Training|PublicTest|PrivateTest)_")


@dataclass(frozen=True)
class FaceRecords:
    """Decoded faces with where each came from; row i of every array is one face."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, index into EMOTIONS
    origins: np.ndarray  # (N,) str: Training / PublicTest / PrivateTest, or the folder (train / test)
    sources: np.ndarray  # (N,) str: file path, or "<csv file>:<line>"

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> FaceRecords:
        return FaceRecords(self.images[index], self.labels[index], self.origins[index], self.sources[index])

    @staticmethod
    def concat(parts: list[FaceRecords]) -> FaceRecords:
        return FaceRecords(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(FaceRecords)))


def read_fer(root: str | Path) -> FaceRecords:
    """Read FER-2013 from a CSV file, a folder holding ``fer2013.csv``, or the image-folder layout."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"data.root={root} does not exist: expected Kaggle's fer2013.csv, or a folder with it, "
            "or a folder with train/<class>/*.jpg and test/<class>/*.jpg"
        )
    if root.is_file():
        return read_csv(root)
    csvs = sorted(root.glob("*.csv"))
    if (root / "fer2013.csv").is_file():
        return read_csv(root / "fer2013.csv")
    if (root / "train").is_dir():
        return read_folders(root)
    if len(csvs) == 1:
        return read_csv(csvs[0])
    raise FileNotFoundError(
        f"data.root={root} holds neither fer2013.csv nor a train/ folder of class folders "
        f"(found: {sorted(p.name for p in root.iterdir())[:10]}); point data.root at one of them"
    )


def read_csv(path: Path) -> FaceRecords:
    """Kaggle's CSV: ``emotion,pixels[,Usage]``; a file without Usage is all Training."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.columns = frame.columns.str.strip()  # icml_face_data.csv writes " Usage", " pixels"
    missing = {"emotion", "pixels"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected header emotion,pixels,Usage")
    usages = frame["Usage"].str.strip() if "Usage" in frame.columns else pd.Series("Training", index=frame.index)
    images = np.empty((len(frame), FACE_SIZE, FACE_SIZE), np.uint8)
    labels = np.empty(len(frame), np.int64)
    for row, (emotion, pixels, usage) in enumerate(zip(frame["emotion"], frame["pixels"], usages)):
        where = f"{path}:{row + 2}"  # +1 for the header, +1 for 1-based lines
        values = np.array(pixels.split(), dtype=np.int64) if pixels.strip() else np.empty(0, np.int64)
        if values.size != FACE_SIZE * FACE_SIZE or values.min() < 0 or values.max() > 255:
            raise ValueError(f"{where}: expected {FACE_SIZE * FACE_SIZE} integers in 0..255 in 'pixels'")
        if emotion.strip() not in {str(i) for i in range(NUM_CLASSES)}:
            raise ValueError(f"{where}: emotion {emotion!r} is not one of 0..{NUM_CLASSES - 1}")
        if usage not in CSV_USAGES:
            raise ValueError(f"{where}: Usage {usage!r} is not one of {CSV_USAGES}")
        images[row] = values.reshape(FACE_SIZE, FACE_SIZE)
        labels[row] = int(emotion)
    sources = np.array([f"{path}:{row + 2}" for row in range(len(frame))])
    return FaceRecords(images, labels, usages.to_numpy(dtype=str), sources)


def read_folders(root: Path) -> FaceRecords:
    """The folder re-upload: class folders are mapped to EMOTIONS by name, never by sort order."""
    files: list[Path] = []
    labels: list[int] = []
    origins: list[str] = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name in ("train", "test")):
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            name = class_dir.name.lower()
            if name not in EMOTIONS:
                raise ValueError(f"{class_dir}: unknown class folder; expected one of {EMOTIONS}")
            images = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise ValueError(f"{class_dir}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
            for file in images:
                match = _ORIGIN_IN_NAME.match(file.name)
                files.append(file)
                labels.append(EMOTIONS.index(name))
                origins.append(match.group(1) if match else split_dir.name)
    with ThreadPoolExecutor() as pool:  # PIL releases the GIL while decoding
        decoded = list(pool.map(decode_face, files))
    return FaceRecords(
        np.stack(decoded) if decoded else np.empty((0, FACE_SIZE, FACE_SIZE), np.uint8),
        np.array(labels, np.int64),
        np.array(origins, dtype=str),
        np.array([str(f) for f in files], dtype=str),
    )


def decode_face(path: Path) -> np.ndarray:
    """One 48x48 grayscale face as uint8; any other size or an unreadable file is an error naming it."""
    try:
        with Image.open(path) as image:
            face = np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error
    if face.shape != (FACE_SIZE, FACE_SIZE):
        raise ValueError(f"{path}: image is {face.shape[1]}x{face.shape[0]}, expected {FACE_SIZE}x{FACE_SIZE}")
    return face
