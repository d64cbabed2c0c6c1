"""How often predict's face detectors find FER-2013's own test faces: tight crops, faces in a scene, both tilted.

    python -m fer_lightning.detection_bench --faces ../shared/fer2013/test --step 4 --detectors haar haar:pads=[0.0] ssd

Test images are made in memory from the faces under ``--faces`` (sorted ``*/*.jpg``), nothing is written:
  tight      the 48x48 face upscaled (cubic) to 350x350, no border: the face fills the image
  scene      the face at 120-250 px at a random place on a 640x480 background (smooth noise, gradient or texture)
  *_rot      the same turned by +-20 degrees about the face's centre
Every random choice is seeded by (seed, set, index). Prints a Markdown table: detected % / images with 2+ boxes % /
mean IoU of the best box with the true face square (over detected images) / median ms per image.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.detectors import Detector
from fer_lightning.faces import Box
from fer_lightning.recognizer import build_detector, predict_settings

SETS = ("tight", "scene", "tight_rot", "scene_rot")
TIGHT, SCENE = 350, (640, 480)
SCENE_SIDES, ANGLE = (120, 250), 20.0


def background(rng: np.random.Generator) -> np.ndarray:
    width, height = SCENE
    kind = rng.integers(3)
    if kind == 0:  # smooth noise
        cells = int(rng.integers(4, 16))
        image = cv2.resize(rng.uniform(0, 255, (cells, cells * 4 // 3)).astype(np.float32), SCENE, interpolation=cv2.INTER_CUBIC)
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


def test_image(kind: str, index: int, face: np.ndarray, seed: int) -> tuple[np.ndarray, Box]:
    """One image of a set and its true face square."""
    rng = np.random.default_rng([seed, SETS.index(kind.removesuffix("_rot")), index])
    if kind.startswith("tight"):
        image, box = cv2.resize(face, (TIGHT, TIGHT), interpolation=cv2.INTER_CUBIC), Box(0, 0, TIGHT, TIGHT)
    else:
        image = background(rng)
        side = int(rng.integers(SCENE_SIDES[0], SCENE_SIDES[1] + 1))
        x, y = int(rng.integers(0, SCENE[0] - side + 1)), int(rng.integers(0, SCENE[1] - side + 1))
        image[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        box = Box(x, y, side, side)
    if kind.endswith("_rot"):
        angle = ANGLE if np.random.default_rng([seed, 99, index]).integers(2) else -ANGLE
        turn = cv2.getRotationMatrix2D((box.x + box.w / 2, box.y + box.h / 2), angle, 1.0)
        image = cv2.warpAffine(image, turn, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return image, box


def images(faces: Path, kind: str, step: int, seed: int) -> Iterator[tuple[np.ndarray, Box]]:
    for index, file in enumerate(sorted(faces.glob("*/*.jpg"))):
        if index % step == 0:
            yield test_image(kind, index, cv2.imread(str(file), cv2.IMREAD_GRAYSCALE), seed)


def iou(a: Box, b: Box) -> float:
    inter = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x)) * max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return inter / (a.w * a.h + b.w * b.h - inter)


def measure(detector: Detector, faces: Path, kind: str, step: int, seed: int) -> str:
    counts, ious, times = [], [], []
    for image, truth in images(faces, kind, step, seed):
        start = time.perf_counter()
        boxes = detector(image)
        times.append((time.perf_counter() - start) * 1000)
        counts.append(len(boxes))
        if boxes:
            ious.append(max(iou(box, truth) for box in boxes))
    counts_ = np.array(counts)
    return (f"{(counts_ >= 1).mean():.1%} / {(counts_ >= 2).mean():.1%} / {np.mean(ious) if ious else 0:.2f} / "
            f"{np.median(times):.0f} ms (n={len(counts)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, required=True, help="FER-2013's test/ folder (read only)")
    parser.add_argument("--detectors", nargs="+", default=["haar", "ssd"],
                        help="names in conf/predict/detector/, each with :key=value overrides, e.g. haar:pads=[0.0]")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--step", type=int, default=4, help="every step-th face")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print("| detector | " + " | ".join(args.sets) + " |\n|---|" + "---|" * len(args.sets), flush=True)
    for spec in args.detectors:
        name, *overrides = spec.split(":")
        detector = build_detector(predict_settings(name, [f"detector.{o}" for o in overrides]).detector)
        cells = [measure(detector, args.faces, kind, args.step, args.seed) for kind in args.sets]
        print(f"| `{spec}` | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
