"""Readers for the two real FER-2013 formats, both decoded into one in-memory form.

Kaggle's ``fer2013.csv`` (emotion,pixels,Usage) and the image-folder re-upload
(``train/<class>/*.jpg``, ``test/<class>/*.jpg``) hold the same faces; both readers return
``FaceRecords`` so that the same face gets the same label and the same split either way.
A record that cannot be read (a corrupt file, a malformed CSV row) never stops the load: it comes
back as a ``Rejected`` naming its file or line, and the caller decides whether that is fatal.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from fer_lightning.core.classes import EMOTIONS, FACE_SIZE, NUM_CLASSES
from fer_lightning.core.console import on_terminal

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff")
CSV_USAGES = ("Training", "PublicTest", "PrivateTest")
PROGRESS_FROM = 2000  # a decode of fewer files is over before a progress bar would help
# The folder re-upload keeps the CSV's split in each file name: Training_123.jpg, PublicTest_45.jpg.
_ORIGIN_IN_NAME = re.compile(r"^(Training|PublicTest|PrivateTest)_")
# Folder names other face datasets use for the same seven emotions (FER+, RAF-DB, AffectNet, CK+, Kaggle's
# "emotion detection" set): read as FER-2013's classes. Anything else (e.g. contempt) is an unknown class.
CLASS_SYNONYMS = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
}
UnknownClasses = Literal["error", "skip"]  # data.unknown_classes


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


@dataclass(frozen=True)
class Rejected:
    """A record that could not become a face: ``source`` is the file or ``<csv>:<line>``."""

    source: str
    kind: str  # "unreadable" (image file) or "malformed" (CSV row)
    detail: str


def find_source(root: str | Path) -> tuple[str, Path]:
    """("csv", file) or ("folders", root): which format ``data.root`` holds."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"data.root={root} does not exist: expected Kaggle's fer2013.csv, or a folder with it, "
            "or a folder with train/<class>/*.jpg and test/<class>/*.jpg"
        )
    if root.is_file():
        return "csv", root
    if (root / "fer2013.csv").is_file():
        return "csv", root / "fer2013.csv"
    if (root / "train").is_dir() or (root / "test").is_dir():
        return "folders", root
    csvs = sorted(root.glob("*.csv"))
    if len(csvs) == 1:
        return "csv", csvs[0]
    raise FileNotFoundError(
        f"data.root={root} holds neither fer2013.csv nor train/ or test/ folders of class folders "
        f"(found: {sorted(p.name for p in root.iterdir())[:10]}); point data.root at one of them"
    )


def read_csv(path: Path) -> tuple[FaceRecords, list[Rejected]]:
    """Kaggle's CSV: ``emotion,pixels[,Usage]``; a file without Usage is all Training."""
    images, labels, usages, sources, rejected = [], [], [], [], []
    with path.open(newline="", encoding="utf-8-sig") as file:  # utf-8-sig: a byte-order mark is not part of "emotion"
        reader = csv.reader(file)
        header = [name.strip() for name in next(reader, [])]  # icml_face_data.csv writes " Usage", " pixels"
        missing = {"emotion", "pixels"} - set(header)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected header emotion,pixels,Usage")
        column = {name: header.index(name) for name in ("emotion", "pixels", "Usage") if name in header}
        for cells in reader:
            where = f"{path}:{reader.line_num}"
            if len(cells) != len(header):
                rejected.append(Rejected(where, "malformed", f"{len(cells)} fields, expected {len(header)} ({header})"))
                continue
            usage = cells[column["Usage"]].strip() if "Usage" in column else "Training"
            face, problem = parse_csv_row(cells[column["emotion"]].strip(), cells[column["pixels"]], usage)
            if problem:
                rejected.append(Rejected(where, "malformed", problem))
                continue
            images.append(face)
            labels.append(int(cells[column["emotion"]]))
            usages.append(usage)
            sources.append(where)
    return _records(images, labels, usages, sources), rejected


def parse_csv_row(emotion: str, pixels: str, usage: str) -> tuple[np.ndarray | None, str | None]:
    """(48x48 face, None) or (None, what is wrong with the row)."""
    try:
        values = np.array(pixels.split(), dtype=np.int64)
    except ValueError:
        return None, "'pixels' holds a value that is not an integer"
    except OverflowError:
        return None, "'pixels' holds an integer too large for a pixel, expected 0..255"
    if values.size != FACE_SIZE * FACE_SIZE:
        return None, f"'pixels' holds {values.size} values, expected {FACE_SIZE * FACE_SIZE} integers in 0..255"
    outside = values[(values < 0) | (values > 255)]
    if outside.size:
        return None, f"'pixels' holds {outside.size} value(s) outside 0..255 (first: {outside[0]})"
    if emotion not in {str(i) for i in range(NUM_CLASSES)}:
        return None, f"emotion {emotion!r} is not one of 0..{NUM_CLASSES - 1}"
    if usage not in CSV_USAGES:
        return None, f"Usage {usage!r} is not one of {CSV_USAGES}"
    return values.reshape(FACE_SIZE, FACE_SIZE).astype(np.uint8), None


def folder_class(name: str) -> int | None:
    """The EMOTIONS index a class folder's name stands for (case-insensitive, synonyms too), or None."""
    name = name.lower()
    name = CLASS_SYNONYMS.get(name, name)
    return EMOTIONS.index(name) if name in EMOTIONS else None


def class_folders(root: Path) -> list[Path]:
    """Every class folder under train/ and test/, in sorted order."""
    splits = sorted(p for p in root.iterdir() if p.is_dir() and p.name in ("train", "test"))
    return [class_dir for split_dir in splits for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir())]


def check_class_folders(root: Path, unknown_classes: UnknownClasses) -> list[Path]:
    """The class folders that are none of the seven: an error naming the first (``error``, the default, as a
    typo in a folder name must not silently lose a class), or each listed in one line with its file count and
    returned (``skip``). The folder reader itself never reads them, so its cache is the same either way."""
    unknown = [folder for folder in class_folders(root) if folder_class(folder.name) is None]
    if unknown and unknown_classes == "error":
        raise ValueError(
            f"{unknown[0]}: unknown class folder; expected one of {EMOTIONS} (or "
            f"{', '.join(CLASS_SYNONYMS)}); data.unknown_classes=skip lists and skips such folders"
        )
    for folder in unknown:
        files = sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        log.warning("Skipping unknown class folder %s (%d files)", folder, files)
    return unknown


def class_folder_entries(root: Path) -> list[tuple[Path, list[Path]]]:
    """Each class folder of the seven under train/ and test/, with what the folder reader looks at in it: every entry
    that is not hidden and not a folder, sorted. A link to a folder inside a class folder is a folder: skipped, never
    followed (the cache key, data/cache.py, lists exactly these). A link to a file, or a dangling one, is an entry."""
    found = []
    for class_dir in class_folders(root):
        if folder_class(class_dir.name) is None:
            continue
        with os.scandir(class_dir) as scan:
            entries = sorted(Path(e.path) for e in scan if not e.name.startswith(".") and not is_folder(e))
        found.append((class_dir, entries))
    return found


def is_folder(entry: os.DirEntry) -> bool:
    """A folder or a link to one (``Path.is_dir``, mostly without a stat); a looping link is not one."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def list_folder_images(root: Path) -> tuple[list[Path], list[int], list[str], list[Rejected]]:
    """Image files under train/ and test/ with label and origin; other files come back rejected. Class folders
    that are none of the seven are left out: ``check_class_folders`` decides whether they stop the run."""
    files, labels, origins, rejected = [], [], [], []
    for class_dir, children in class_folder_entries(root):
        split_dir, label = class_dir.parent, folder_class(class_dir.name)
        entries = [p for p in children if p.is_file()]
        # A dangling or looping symlink (is_file() is False for both) is listed, never silently dropped.
        rejected += [
            Rejected(str(p), "unreadable", f"cannot be opened ({stat_error(p)})") for p in children if not p.is_file()
        ]
        images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise ValueError(f"{class_dir}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
        rejected += [
            Rejected(str(p), "unreadable", "not an image file (by its suffix)")
            for p in entries
            if p.suffix.lower() not in IMAGE_SUFFIXES
        ]
        for file in images:
            match = _ORIGIN_IN_NAME.match(file.name)
            files.append(file)
            labels.append(label)
            origins.append(match.group(1) if match else split_dir.name)
    return files, labels, origins, rejected


def read_folders(root: Path) -> tuple[FaceRecords, list[Rejected]]:
    """The folder re-upload: class folders are mapped to EMOTIONS by name, never by sort order."""
    files, labels, origins, rejected = list_folder_images(root)
    with ThreadPoolExecutor() as pool:  # PIL releases the GIL while decoding
        decoded = list(
            tqdm(
                pool.map(decode_face, files),
                total=len(files),
                desc=f"Decoding {root}",
                unit="img",
                disable=len(files) < PROGRESS_FROM or not on_terminal(),  # no carriage returns in a file
                leave=False,
            )
        )
    good = [i for i, face in enumerate(decoded) if not isinstance(face, Rejected)]
    rejected += [face for face in decoded if isinstance(face, Rejected)]
    return _records(
        [decoded[i] for i in good], [labels[i] for i in good], [origins[i] for i in good], [str(files[i]) for i in good]
    ), rejected


def _records(images: list[np.ndarray], labels: list[int], origins: list[str], sources: list[str]) -> FaceRecords:
    return FaceRecords(
        np.stack(images) if images else np.empty((0, FACE_SIZE, FACE_SIZE), np.uint8),
        np.array(labels, np.int64),
        np.array(origins, dtype=str),
        np.array(sources, dtype=str),
    )


def stat_error(path: Path) -> str:
    """Why ``path`` cannot be opened as a file (e.g. "Too many levels of symbolic links")."""
    try:
        os.stat(path)
    except OSError as error:
        return error.strerror or str(error)
    return "not a regular file"


def to_gray8(image: Image.Image) -> np.ndarray:
    """8-bit grayscale pixels. A 16-bit gray image (PIL's I;16 modes, or I from a 16-bit PNG) is scaled from
    [0, 65535] to [0, 255]; PIL's convert("L") would clip it, leaving almost every pixel at 255."""
    if image.mode.startswith("I;16") or (image.mode == "I" and np.asarray(image).max(initial=0) > 255):
        wide = np.asarray(image).astype(np.float64)
        return np.clip(np.rint(wide / 257), 0, 255).astype(np.uint8)
    return np.asarray(image.convert("L"))


def unsupported_depth(image: Image.Image) -> str | None:
    """Why an image's pixels cannot be read as 8-bit gray, else None: float pixels (a float TIFF, PIL's mode F) have no
    range to scale from (convert("L") clips them, so a face in 0..1 would come out black and be dropped as blank),
    nor have 32-bit integers beyond 16 bits."""
    if image.mode == "F":
        return "float pixels (PIL mode F): unsupported pixel depth, expected 8- or 16-bit integers"
    if image.mode == "I":
        pixels = np.asarray(image)
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            return "32-bit integer pixels outside 0..65535: unsupported pixel depth, expected 8- or 16-bit integers"
    return None


def decode_face(path: Path) -> np.ndarray | Rejected:
    """One 48x48 grayscale face as uint8, or why it is not one."""
    try:
        with Image.open(path) as image:
            depth = unsupported_depth(image)
            if depth:
                return Rejected(str(path), "unreadable", f"{image.format or 'an image'} of {depth}")
            face = to_gray8(image)
    except (UnidentifiedImageError, OSError) as error:
        return Rejected(str(path), "unreadable", f"not a readable image ({error})")
    if face.shape != (FACE_SIZE, FACE_SIZE):
        return Rejected(
            str(path), "unreadable", f"image is {face.shape[1]}x{face.shape[0]}, expected {FACE_SIZE}x{FACE_SIZE}"
        )
    return face
