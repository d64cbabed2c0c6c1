"""Faces in ordinary photos: OpenCV's bundled Haar cascade finds them, and each becomes a 48x48 gray face
cut and shrunk the way the model's training faces were.

FER-2013's own faces are framed like this cascade's box: on its test images (upscaled, with a border) the
cascade's box spans 96-99% of the side, centred, so a margin of 0 crops new photos as the training faces were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.data.readers import FACE_SIZE


@dataclass(frozen=True)
class Box:
    """A face's box in the photo's own pixels."""

    x: int
    y: int
    w: int
    h: int


class FaceDetector:
    """``cv2.CascadeClassifier.detectMultiScale2`` with its knobs from conf/predict.yaml (predict.detector).

    ``cascade`` is a file name in ``cv2.data.haarcascades`` (OpenCV 4.x ships them; 5.x does not) or a path
    to one's own cascade. Photos longer than ``max_side`` are shrunk for the search only (a 12-megapixel
    photo takes about 2 s at full size, 0.2 s at 1280): boxes come back in the photo's own pixels, and
    ``min_size`` is measured there too.
    """

    def __init__(
        self, cascade: str, scale_factor: float, min_neighbors: int, min_size: int, max_side: int | None,
        max_overlap: float,
    ) -> None:
        path = Path(cascade).expanduser() if Path(cascade).expanduser().is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise FileNotFoundError(
                f"predict.detector.cascade={cascade}: no Haar cascade at {path} "
                f"(the bundled ones: {sorted(p.name for p in Path(cv2.data.haarcascades).glob('*.xml'))[:6]}...)"
            )
        self.scale_factor, self.min_neighbors, self.min_size, self.max_side = scale_factor, min_neighbors, min_size, max_side
        self.max_overlap = max_overlap

    def __call__(self, gray: np.ndarray) -> list[Box]:
        """The faces in a gray photo, left to right."""
        scale = min(1.0, self.max_side / max(gray.shape)) if self.max_side else 1.0
        searched = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(1, round(self.min_size * scale))
        found, hits = self.classifier.detectMultiScale2(
            searched, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        boxes = [Box(*(round(int(v) / scale) for v in box)) for box in found]
        return sorted(drop_overlaps(boxes, [int(n) for n in hits], self.max_overlap), key=lambda b: (b.x, b.y))


def drop_overlaps(boxes: list[Box], hits: list[int], max_overlap: float) -> list[Box]:
    """One box per face: where boxes overlap by more than ``max_overlap`` of the smaller one's area, only the
    one most windows agreed on stays (the cascade sometimes adds a second, shifted box around a face and its hair)."""
    kept: list[Box] = []
    for _, box in sorted(zip(hits, boxes), key=lambda pair: -pair[0]):
        if all(overlap(box, other) <= max_overlap for other in kept):
            kept.append(box)
    return kept


def overlap(a: Box, b: Box) -> float:
    """Intersection area as a share of the smaller box's area."""
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(0, width) * max(0, height) / min(a.w * a.h, b.w * b.h)


def to_gray(image: np.ndarray) -> np.ndarray:
    """A decoded image (gray, or BGR as cv2 reads it) as one uint8 gray channel."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def as_face(gray: np.ndarray) -> np.ndarray:
    """A gray image as a 48x48 face; area interpolation, so shrinking a large crop does not alias."""
    if gray.shape == (FACE_SIZE, FACE_SIZE):
        return gray
    return cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


def crop_face(gray: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """The square around ``box`` grown by ``margin`` of its side on every edge, as a 48x48 face.

    Where the square leaves the photo its edge pixels are repeated rather than the square cut short: a face
    at the border keeps its proportions instead of being stretched into 48x48.
    """
    side = max(1, round(max(box.w, box.h) * (1 + 2 * margin)))
    left, top = box.x + (box.w - side) // 2, box.y + (box.h - side) // 2
    height, width = gray.shape
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    return as_face(gray[top : top + side, left : left + side])
