"""A face's box in a photo, and the 48x48 gray face cut from it the way the model's training faces were cut.

FER-2013's own faces are framed like OpenCV's Haar cascade box: on its test images (upscaled, with a border) the
cascade's box spans 96-99% of the side, centred, so a margin of 0 crops new photos as the training faces were.
The detectors that find the boxes are in fer_lightning/serving/detectors.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import cv2
import numpy as np

from fer_lightning.core.classes import FACE_SIZE


class Box(NamedTuple):
    """A face's box in the photo's own pixels (a tuple, so ``x, y, w, h = box`` works)."""

    x: int
    y: int
    w: int
    h: int


def to_gray(image: np.ndarray) -> np.ndarray:
    """A decoded image (gray, BGR as cv2 reads it, or BGRA) as one uint8 gray channel."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Three BGR channels: colour detectors were trained on colour photos, and a gray one goes in as three equal
    channels."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if image.shape[2] == 4 else image


def as_face(gray: np.ndarray) -> np.ndarray:
    """A gray image as a 48x48 face; area interpolation, so shrinking a large crop does not alias."""
    if gray.shape == (FACE_SIZE, FACE_SIZE):
        return gray
    return cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


def face_square(box: Box, margin: float) -> Box:
    """The square the face is cut from: around ``box``, grown by ``margin`` of its side on every edge (it may
    leave the photo)."""
    side = max(1, round(max(box.w, box.h) * (1 + 2 * margin)))
    return Box(box.x + (box.w - side) // 2, box.y + (box.h - side) // 2, side, side)


def cut_square(image: np.ndarray, box: Box, margin: float, angle: float = 0.0) -> np.ndarray:
    """``face_square``'s pixels (gray or colour), turned by ``angle`` degrees (counter-clockwise) about its centre.

    Where the square leaves the photo its edge pixels are repeated rather than the square cut short: a face
    at the border (or one that fills a tight crop) keeps its proportions instead of being stretched.
    """
    left, top, side, _ = face_square(box, margin)
    turn = cv2.getRotationMatrix2D(
        (left + (side - 1) / 2, top + (side - 1) / 2), angle, 1.0
    )  # pixel centres: whole numbers
    turn[:, 2] -= (left, top)  # at angle 0 a whole-pixel shift: the square's pixels exactly
    return cv2.warpAffine(image, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_face(gray: np.ndarray, box: Box, margin: float, angle: float = 0.0) -> np.ndarray:
    """``cut_square`` as the 48x48 face the model sees."""
    return as_face(cut_square(gray, box, margin, angle))


class FoundFace(NamedTuple):
    """A face found in a photo: its box in the photo's pixels, the 48x48 gray face the model sees, how many degrees
    it was turned (counter-clockwise) to level its eyes before the crop (0 without ``predict.align``), and which face
    of which file it is (left to right; ``file`` is None for an image given as an array or a video frame)."""

    box: Box
    face: np.ndarray
    angle: float = 0.0
    index: int = 0
    file: Path | None = None


def box_overlap(a: Box, b: Box, relative_to: Literal["smaller", "union"]) -> float:
    """The boxes' intersection area as a share of the smaller box's area (``smaller``: one face found twice, a box
    inside another) or of their union (``union``: IoU, a found box against the true face)."""
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inside = max(0, width) * max(0, height)
    whole = min(a.w * a.h, b.w * b.h) if relative_to == "smaller" else a.w * a.h + b.w * b.h - inside
    return inside / max(1, whole)
