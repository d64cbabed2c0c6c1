"""EmotionRecognizer: the Python API of predict, the faces in an image and their emotions from a trained checkpoint.

``python -m fer_lightning.predict`` runs on this same object, so an image gives the same boxes and the same
probabilities through either: detection (conf/predict/detector/), the crop (fer_lightning/serving/faces.py) and eval's
transform, Dataset and autocast-matched forward pass (fer_lightning/evaluation/inference.py).

    from fer_lightning import EmotionRecognizer
    recognizer = EmotionRecognizer.from_checkpoint(detector="ssd")  # the released default model; or a .ckpt, "last"
    recognizer.detect("photo.jpg")  # [{"box": (x, y, w, h), "emotions": {"angry": 0.01, ...}, "top": ("happy", 0.93)}]
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch.utils.data import DataLoader

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.data.datamodule import FaceDataset
from fer_lightning.data.readers import FaceRecords
from fer_lightning.data.transforms import eval_transform
from fer_lightning.evaluation.calibration import apply_temperature
from fer_lightning.evaluation.inference import predict_probabilities
from fer_lightning.evaluation.saliency import gradcam_maps
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.detectors import Detector
from fer_lightning.serving.faces import Box, FoundFace, as_face, crop_face, to_gray
from fer_lightning.serving.landmarks import EyeAligner

ImageLike = np.ndarray | Image.Image | str | Path
DETECTORS_DIR = CONFIG_DIR / "predict" / "detector"
log = logging.getLogger(__name__)


def detector_config(detector: str | DictConfig) -> DictConfig:
    """A detector's config: as composed (predict/detector=ssd), or by name (predict.detector=ssd, the API)."""
    if not isinstance(detector, str):
        return best_installed(detector) if "best_installed" in detector else detector
    path = DETECTORS_DIR / f"{detector}.yaml"
    if not path.is_file():
        raise ValueError(f"predict.detector={detector}: one of {sorted(p.stem for p in DETECTORS_DIR.glob('*.yaml'))}")
    return detector_config(OmegaConf.load(path))


def best_installed(auto: DictConfig) -> DictConfig:
    """predict/detector=auto (the default): the first of ``best_installed`` whose package is installed (a detector
    config naming no ``package`` needs none), logged. The package is looked up, not imported."""
    names = list(auto.best_installed)
    for name in names:
        config = OmegaConf.load(DETECTORS_DIR / f"{name}.yaml")
        package = config.get("package")
        if package is None or importlib.util.find_spec(package) is not None:
            why = f"{package} is installed" if package else "bundled"
            others = ", ".join(n for n in names if n != name)
            log.info("Face detector: %s (%s; predict/detector=%s for another)", name, why, others or name)
            return config
        log.info("Face detector %s skipped: %s is not installed (pip install -e '.[detect]')", name, package)
    raise ValueError(f"predict/detector=auto: none of {names} is installed")


def build(config: DictConfig) -> Any:
    """A detector or aligner instantiated from its config; its own one-line error (a missing package, a missing
    file) rather than Hydra's wrapper around it."""
    try:
        return instantiate(config)
    except InstantiationException as error:
        if isinstance(error.__cause__, (ModuleNotFoundError, FileNotFoundError, ValueError)):
            raise error.__cause__ from None
        raise


def build_detector(detector: str | DictConfig) -> Detector:
    """A detector by name (conf/predict/detector/) or from its composed config."""
    return build(detector_config(detector))


def predict_settings(detector: str, overrides: Sequence[str] = ()) -> DictConfig:
    """conf/predict.yaml's ``predict`` block with ``detector`` by name and ``overrides`` (``key=value``, relative to
    ``predict``) applied: the API's defaults are the command line's."""
    settings = OmegaConf.load(CONFIG_DIR / "predict.yaml").predict
    settings.detector = detector_config(detector)
    return OmegaConf.merge(settings, OmegaConf.from_dotlist(list(overrides)))


# An image no larger than this on its longer side, and about square, is taken for a face crop (FER-2013's are 48x48).
FACE_CROP_SIDE = 128


# How a command-line or Python user takes each image as one face; the web server says its own way.
WHOLE_IMAGE_HINT = "predict.detect_faces=false takes each image as one face (API: overrides=['detect_faces=false'])"


def read_image(image: ImageLike) -> np.ndarray:
    """An image as cv2 holds it: gray (H, W) or BGR (H, W, 3). A path is read as the command line reads it (cv2,
    EXIF-oriented, colour); a PIL image keeps gray as gray and becomes BGR otherwise."""
    if isinstance(image, (str, Path)):
        path = Path(image).expanduser()
        if path.is_dir():
            raise IsADirectoryError(f"{image}: a folder, not an image file")
        if not path.is_file():
            raise FileNotFoundError(f"{image}: no such file")
        decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError(f"{image}: not an image OpenCV can read")
        return decoded
    if isinstance(image, Image.Image):
        if image.mode in ("L", "I;16", "I", "F"):
            return np.asarray(image.convert("L"))
        return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    if (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and (image.ndim == 2 or image.ndim == 3 and image.shape[2] in (1, 3, 4))
    ):
        return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    raise TypeError(
        f"expected a path, a PIL image or a uint8 array (H, W) or (H, W, 3|4) in BGR, got {type(image).__name__}"
        f"{getattr(image, 'shape', '')}"
    )


class EmotionRecognizer:
    """A checkpoint's model with a face detector: faces and their emotions for images, on a GPU when there is one."""

    def __init__(self, trained: LoadedCheckpoint, settings: DictConfig) -> None:
        """``settings``: conf/predict.yaml's ``predict`` block (detect_faces, margin, batch_size, device, detector,
        align, aligner)."""
        self.trained, self.settings = trained, settings
        self.detector: Detector | None = build_detector(settings.detector) if settings.detect_faces else None
        self.aligner: EyeAligner | None = build(settings.aligner) if settings.align else None
        self.device = torch.device(settings.device) if settings.device else trained.device  # the GPU when there is one
        trained.model.to(self.device)
        self.batch_size: int = settings.batch_size or trained.config.data.batch_size

    @classmethod
    def from_checkpoint(
        cls,
        ckpt_path: str | Path | None = None,
        detector: str = "auto",
        overrides: Sequence[str] = (),
        root: str | Path = "outputs",
    ) -> EmotionRecognizer:
        """``ckpt_path``: a .ckpt file, ``last`` (the newest training run's last.ckpt under ``root``) or None (the
        released default model);
        ``detector``: a name in conf/predict/detector/; ``overrides``: predict settings, e.g. ``["align=true",
        "margin=0.1", "detector.min_score=0.5", "device=cpu"]``."""
        return cls(LoadedCheckpoint.load(ckpt_path, root), predict_settings(detector, overrides))

    @property
    def min_face_side(self) -> int:
        return self.settings.get("min_face_side") or 0

    def detector_for(self, detect: bool) -> Detector | None:
        """The detector an image goes through: none where it is taken whole (``detect_faces=false`` for every image,
        ``detect=False`` for one)."""
        return self.detector if detect else None

    def too_small(self, image: np.ndarray, detect: bool = True) -> str | None:
        """Why an image taken whole as a face (``detect_faces=false``, or ``detect=False``) is too small to be one:
        below ``min_face_side`` pixels on its shorter side (a 1x1 image would be stretched into a 48x48 "face"), else
        None."""
        height, width = image.shape[:2]
        if self.detector_for(detect) is None and min(height, width) < self.min_face_side:
            return (
                f"image is {width}x{height}, smaller than predict.min_face_side={self.min_face_side} on a side: "
                "too small to be taken for a face"
            )
        return None

    def why_no_face(self, image: np.ndarray, detect: bool = True, hint: str = WHOLE_IMAGE_HINT) -> str:
        """Why an image gave no face: ``too_small`` to be taken whole, or none detected, with ``hint`` where it looks
        like a face crop (detectors need context around a face) big enough to be taken whole."""
        small = self.too_small(image, detect)
        if small:
            return small
        height, width = image.shape[:2]
        crop = max(height, width) <= FACE_CROP_SIDE and 0.75 <= width / max(height, 1) <= 1.33
        if crop and self.detector_for(detect) is not None and min(height, width) >= self.min_face_side:
            return f"no face found in what looks like a face crop: {hint} (the image is {width}x{height})"
        return "no face found"

    def find_faces(self, image: np.ndarray, detect: bool = True) -> list[FoundFace]:
        """Every face of a decoded image, left to right, levelled by its eyes with ``align=true``; with
        ``detect_faces=false`` (or ``detect=False``, one image's choice) the whole image is the face (levelled too
        with ``align=true``), unless it is ``too_small``: then none."""
        if self.too_small(image, detect):
            return []
        gray = to_gray(image)
        whole = Box(0, 0, gray.shape[1], gray.shape[0])
        detector = self.detector_for(detect)
        if detector is None and self.aligner is None:
            return [FoundFace(whole, as_face(gray))]
        found = []
        for index, box in enumerate(detector(image) if detector is not None else [whole]):
            angle = self.aligner.angle(image, box) if self.aligner else 0.0
            found.append(FoundFace(box, crop_face(gray, box, self.settings.margin, angle), angle, index))
        return found

    def loader(self, faces: Sequence[np.ndarray]) -> DataLoader:
        """48x48 uint8 gray faces through eval's transform and Dataset, in batches of ``batch_size``."""
        stacked = np.stack(list(faces))
        records = FaceRecords(
            stacked,
            np.full(len(stacked), -1, np.int64),
            np.full(len(stacked), "predict"),
            np.array([str(i) for i in range(len(stacked))]),
        )
        return DataLoader(FaceDataset(records, eval_transform(self.trained.config.data)), batch_size=self.batch_size)

    def probabilities(self, faces: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(N, 7) probabilities of 48x48 uint8 gray faces, through eval's forward pass (bf16 if it trained so), with
        the checkpoint's temperature (fitted on val by ``eval.calibrate=true``) when it has one."""
        if len(faces) == 0:
            return np.empty((0, len(EMOTIONS)), np.float32)
        with torch.inference_mode():
            probabilities = predict_probabilities(
                self.trained.model, self.loader(faces), autocast=self.trained.autocast(self.device)
            )[0]
        temperature = self.trained.temperature
        return probabilities if temperature == 1.0 else apply_temperature(probabilities, temperature)

    def saliency(self, faces: np.ndarray | Sequence[np.ndarray], classes: np.ndarray) -> np.ndarray:
        """(N, image_size, image_size) Grad-CAM maps in [0, 1] of the evidence for ``classes`` (one per face), over
        each face as resized for the net; zero outside the centre crop a net trained on crops sees."""
        size = self.trained.config.data.image_size
        maps = np.zeros((len(faces), size, size), np.float32)
        with torch.inference_mode(False):  # Grad-CAM needs gradients, also when called under predict's inference mode
            start = 0
            for images, _ in self.loader(faces) if len(faces) else []:
                found = gradcam_maps(
                    self.trained.model.net, images.clone(), torch.as_tensor(classes[start : start + len(images)])
                )
                top = (size - found.shape[-1]) // 2
                maps[start : start + len(images), top : top + found.shape[-2], top : top + found.shape[-1]] = found
                start += len(images)
        return maps

    def detect(self, image: ImageLike) -> list[dict[str, Any]]:
        """Each face of one image (BGR or gray array, PIL image, or path), left to right:
        ``{"box": (x, y, w, h), "emotions": {name: probability}, "top": (name, probability)}``."""
        return self.detect_decoded([read_image(image)])[0]

    def detect_batch(self, images: Iterable[ImageLike]) -> list[list[dict[str, Any]]]:
        """``detect`` for many images, the faces of all of them through the model in batches of ``batch_size``. An
        item that is not an image is named by its position (``images[3]: ...``) before any is predicted."""
        decoded = []
        for index, image in enumerate(images):
            try:
                decoded.append(read_image(image))
            except (TypeError, ValueError, OSError) as error:
                raise type(error)(f"images[{index}]: {error}") from None
        return self.detect_decoded(decoded)

    def detect_decoded(self, decoded: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
        """``detect_batch`` of images ``read_image`` decoded."""
        found = [self.find_faces(image) for image in decoded]
        for image, faces in zip(decoded, found, strict=True):
            if not faces:
                log.warning("%s", self.why_no_face(image))
        probabilities = self.probabilities([found_face.face for faces in found for found_face in faces])
        results, start = [], 0
        for faces in found:
            results.append(
                [
                    as_result(face.box, p)
                    for face, p in zip(faces, probabilities[start : start + len(faces)], strict=True)
                ]
            )
            start += len(faces)
        return results


def as_result(box: Box, probabilities: np.ndarray) -> dict[str, Any]:
    emotions = {name: float(p) for name, p in zip(EMOTIONS, probabilities, strict=True)}
    top = max(emotions, key=emotions.__getitem__)
    return {"box": tuple(int(v) for v in box), "emotions": emotions, "top": (top, emotions[top])}
