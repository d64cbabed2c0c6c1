"""Faces in ordinary photos: OpenCV's bundled Haar cascade finds them, crops become 48x48 gray faces."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_lightning.data.readers import FACE_SIZE


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


class FaceDetector:
    """``cv2.CascadeClassifier`` on a cascade file shipped in ``cv2.data.haarcascades``."""

    def __init__(self, cascade: str, scale_factor: float, min_neighbors: int, min_size: int) -> None:
        path = cv2.data.haarcascades + cascade
        self.classifier = cv2.CascadeClassifier(path)
        if self.classifier.empty():
            raise FileNotFoundError(f"predict.cascade={cascade}: no Haar cascade at {path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def __call__(self, gray: np.ndarray) -> list[Box]:
        found = self.classifier.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size, self.min_size)
        )
        return sorted((Box(*map(int, b)) for b in found), key=lambda b: (b.x, b.y))


def crop_face(gray: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """The box grown by ``margin`` of its side on every edge (FER faces include hair and chin), clipped to
    the image, as a 48x48 uint8 face: what the model saw in training."""
    grow_w, grow_h = round(box.w * margin), round(box.h * margin)
    top, bottom = max(box.y - grow_h, 0), min(box.y + box.h + grow_h, gray.shape[0])
    left, right = max(box.x - grow_w, 0), min(box.x + box.w + grow_w, gray.shape[1])
    return as_face(gray[top:bottom, left:right])


def as_face(gray: np.ndarray) -> np.ndarray:
    """Any gray image as a 48x48 face (area interpolation: no aliasing when shrinking)."""
    if gray.shape == (FACE_SIZE, FACE_SIZE):
        return gray
    return cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
