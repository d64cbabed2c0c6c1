"""How often predict's face detectors find FER-2013's own test faces: tight crops, faces in a scene, both tilted.

    python -m fer_lightning.detection_bench faces=../shared/fer2013/test step=4 'detectors=[ssd,haar,"haar:pads=[0.0]"]'

Test images are made in memory from the faces under ``faces`` (sorted ``*/*.jpg``), nothing is written
(sizes and angle: conf/detection_bench.yaml):
  tight      the 48x48 face upscaled (cubic) to tight_side, no border: the face fills the image
  scene      the face at scene_face_sides px at a random place on a scene_size background (noise, gradient or texture)
  *_rot      the same turned by +-angle degrees about the face's centre
Every random choice is seeded by (seed, set, index). Prints a Markdown table: found % (a box with IoU >= min_iou
with the true face square) / images with a box elsewhere % (no IoU >= min_iou: a false face) / images with 2+ boxes %
/ mean IoU of the best box (over images with a box) / median ms per image. ``offset`` picks another subset of the
faces (index % step == offset), so settings tuned on one subset can be scored on faces they never saw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig

from fer_lightning.config import CONFIG_DIR
from fer_lightning.detectors import Detector
from fer_lightning.faces import Box
from fer_lightning.recognizer import build_detector, predict_settings

SETS = ("tight", "scene", "tight_rot", "scene_rot")


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    kind = rng.integers(3)
    if kind == 0:  # smooth noise
        cells = int(rng.integers(4, 16))
        image = cv2.resize(rng.uniform(0, 255, (cells, cells * 4 // 3)).astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # a gradient in a random direction
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = xx * np.cos(theta) + yy * np.sin(theta)
        low, high = sorted(rng.uniform(0, 255, 2))
        image = low + (ramp - ramp.min()) / (ramp.max() - ramp.min()) * (high - low)
    else:  # a blurred random texture
        image = cv2.GaussianBlur(rng.uniform(0, 255, (height, width)).astype(np.float32), (0, 0), rng.uniform(2, 8))
        image = (image - image.mean()) * rng.uniform(3, 8) + rng.uniform(60, 200)
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def test_image(kind: str, index: int, face: np.ndarray, cfg: DictConfig) -> tuple[np.ndarray, Box]:
    """One image of a set and its true face square."""
    rng = np.random.default_rng([cfg.seed, SETS.index(kind.removesuffix("_rot")), index])
    tight, (width, height), (smallest, largest) = cfg.tight_side, cfg.scene_size, cfg.scene_face_sides
    if kind.startswith("tight"):
        image, box = cv2.resize(face, (tight, tight), interpolation=cv2.INTER_CUBIC), Box(0, 0, tight, tight)
    else:
        image = background(rng, (width, height))
        side = int(rng.integers(smallest, largest + 1))
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        image[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        box = Box(x, y, side, side)
    if kind.endswith("_rot"):
        angle = cfg.angle if np.random.default_rng([cfg.seed, 99, index]).integers(2) else -cfg.angle
        turn = cv2.getRotationMatrix2D((box.x + box.w / 2, box.y + box.h / 2), angle, 1.0)
        image = cv2.warpAffine(image, turn, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return image, box


def images(kind: str, cfg: DictConfig) -> Iterator[tuple[np.ndarray, Box]]:
    for index, file in enumerate(sorted(Path(cfg.faces).expanduser().glob("*/*.jpg"))):
        if index % cfg.step == cfg.offset:
            yield test_image(kind, index, cv2.imread(str(file), cv2.IMREAD_GRAYSCALE), cfg)


def iou(a: Box, b: Box) -> float:
    inter = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x)) * max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return inter / (a.w * a.h + b.w * b.h - inter)


def measure(detector: Detector, kind: str, cfg: DictConfig) -> str:
    counts, best, times = [], [], []
    for image, truth in images(kind, cfg):
        start = time.perf_counter()
        boxes = detector(image)
        times.append((time.perf_counter() - start) * 1000)
        counts.append(len(boxes))
        best.append(max((iou(box, truth) for box in boxes), default=np.nan))
    counts_, best_ = np.array(counts), np.array(best)
    found = best_ >= cfg.min_iou
    elsewhere = (counts_ >= 1) & ~found
    return (f"{found.mean():.1%} / {elsewhere.mean():.1%} / {(counts_ >= 2).mean():.1%} / "
            f"{np.nanmean(best_) if (counts_ >= 1).any() else 0:.2f} / {np.median(times):.0f} ms (n={len(counts)})")


def detection_bench(cfg: DictConfig) -> None:
    """Print the table: a row per detector spec, a cell per set."""
    cv2.setNumThreads(1)
    unknown = set(cfg.sets) - set(SETS)
    if unknown:
        raise ValueError(f"sets={list(cfg.sets)}: unknown {sorted(unknown)}, expected some of {list(SETS)}")
    print("| detector | " + " | ".join(cfg.sets) + " |\n|---|" + "---|" * len(cfg.sets), flush=True)
    for spec in cfg.detectors:
        name, *overrides = spec.split(":")
        detector = build_detector(predict_settings(name, [f"detector.{o}" for o in overrides]).detector)
        cells = [measure(detector, kind, cfg) for kind in cfg.sets]
        print(f"| `{spec}` | " + " | ".join(cells) + " |", flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="detection_bench")
def main(cfg: DictConfig) -> None:
    detection_bench(cfg)


if __name__ == "__main__":
    main()
