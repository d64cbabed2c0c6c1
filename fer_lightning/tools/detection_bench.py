"""How often predict's face detectors find FER-2013's own test faces (tight crops, faces in a scene, both tilted),
and how often a model then reads the emotion of the faces found right.

    python -m fer_lightning.detection_bench faces=$FER_DATA_ROOT/test step=4 \
        'detectors=[ssd,haar,"haar:pads=[0.0]","ssd:align=true"]'

Why it ships with the package rather than living beside it as a developer's script: predict's detector and its
settings (``predict/detector=``, ``pads``, ``align``, ``margin``) are the user's choice, and this is how that choice is
made and re-checked (docs/detection.md), on FER-2013 or on any folder of labelled faces, with the installed detectors
and model; it imports nothing the package does not ship and writes nothing.

Test images are made in memory from the faces under ``faces`` (sorted ``*/*.jpg``), nothing is written
(sizes and angle: conf/detection_bench.yaml):
  tight      the 48x48 face upscaled (cubic) to tight_side, no border: the face fills the image
  scene      the face at scene_face_sides px at a random place on a scene_size background (noise, gradient or texture)
  *_rot      the same turned by +-angle degrees about the face's centre
Every random choice is seeded by (seed, set, index). A detector spec is a name in conf/predict/detector/ with
``:key=value`` overrides of predict's settings (``align``, ``margin``, ``aligner.*``) or of the detector's own.
Prints a Markdown table: found % (a box with IoU >= min_iou with the true face square) / images with a box elsewhere
% (no IoU >= min_iou: a false face) / images with 2+ boxes % / mean IoU of the best box (over images with a box) /
median ms per image (detection, alignment and crop) / with ``accuracy=true``, the accuracy of ``ckpt_path``'s model
(null: the released default) on the faces found, each cut as predict cuts it. ``offset`` picks another subset of the
faces (index % step == offset), so settings tuned on one subset can be scored on faces they never saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from omegaconf import DictConfig

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.overrides import parse_override
from fer_lightning.data.readers import folder_class
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.faces import Box, FoundFace, box_overlap
from fer_lightning.serving.recognizer import EmotionRecognizer, predict_settings

SETS = ("tight", "scene", "tight_rot", "scene_rot")


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    kind = rng.integers(3)
    if kind == 0:  # smooth noise
        cells = int(rng.integers(4, 16))
        image = cv2.resize(
            rng.uniform(0, 255, (cells, cells * 4 // 3)).astype(np.float32), size, interpolation=cv2.INTER_CUBIC
        )
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
        image = cv2.warpAffine(
            image, turn, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
    return image, box


class Sample(NamedTuple):
    image: np.ndarray
    truth: Box  # the true face square
    label: int  # index in EMOTIONS, from the face's folder


def images(kind: str, cfg: DictConfig) -> Iterator[Sample]:
    for index, file in enumerate(sorted(Path(cfg.faces).expanduser().glob("*/*.jpg"))):
        if index % cfg.step == cfg.offset:
            label = folder_class(file.parent.name)
            if label is None:
                raise ValueError(f"{file}: its folder {file.parent.name!r} names none of the classes {list(EMOTIONS)}")
            image, truth = test_image(kind, index, cv2.imread(str(file), cv2.IMREAD_GRAYSCALE), cfg)
            yield Sample(image, truth, label)


def measure(
    find: Callable[[np.ndarray], list[FoundFace]],
    kind: str,
    cfg: DictConfig,
    classify: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> str:
    """One cell: how ``find`` (an image's faces) does on a set, and ``classify`` (faces' probabilities) on what it
    found."""
    counts, best, times, faces, labels = [], [], [], [], []
    for image, truth, label in images(kind, cfg):
        start = time.perf_counter()
        found = find(image)
        times.append((time.perf_counter() - start) * 1000)
        counts.append(len(found))
        overlaps = [box_overlap(face.box, truth, "union") for face in found]
        best.append(max(overlaps, default=np.nan))
        if found and best[-1] >= cfg.min_iou:
            faces.append(found[int(np.argmax(overlaps))].face)
            labels.append(label)
    counts_, best_ = np.array(counts), np.array(best)
    hit = best_ >= cfg.min_iou
    elsewhere = (counts_ >= 1) & ~hit
    cell = (
        f"{hit.mean():.1%} / {elsewhere.mean():.1%} / {(counts_ >= 2).mean():.1%} / "
        f"{np.nanmean(best_) if (counts_ >= 1).any() else 0:.2f} / {np.median(times):.0f} ms"
    )
    if classify is not None:
        right = classify(faces).argmax(1) == np.array(labels, np.int64) if faces else np.zeros(0, bool)
        cell += f" / {right.mean():.1%} acc" if len(right) else " / - acc"  # no face found: nothing to score
    return f"{cell} (n={len(counts)})"


def bench_settings(spec: str) -> DictConfig:
    """predict's settings for a spec ``name[:key=value]...``: keys of predict's own block as they are (``align``,
    ``detector.min_score``), the others the detector's (``ssd:input_sizes=[300]:align=true``)."""
    name, *overrides = spec.split(":")
    own = set(predict_settings(name))  # predict's keys, detector included
    return predict_settings(
        name, [o if parse_override(o).key.split(".")[0] in own else f"detector.{o}" for o in overrides]
    )


def detection_bench(cfg: DictConfig) -> None:
    """Print the table: a row per detector spec, a cell per set."""
    cv2.setNumThreads(1)
    unknown = set(cfg.sets) - set(SETS)
    if unknown:
        raise ValueError(f"sets={list(cfg.sets)}: unknown {sorted(unknown)}, expected some of {list(SETS)}")
    trained = LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root)  # the detectors run through its recognizer
    print("| detector | " + " | ".join(cfg.sets) + " |\n|---|" + "---|" * len(cfg.sets), flush=True)
    for spec in cfg.detectors:
        recognizer = EmotionRecognizer(trained, bench_settings(spec))
        classify = recognizer.probabilities if cfg.accuracy else None
        cells = [measure(recognizer.find_faces, kind, cfg, classify) for kind in cfg.sets]
        print(f"| `{spec}` | " + " | ".join(cells) + " |", flush=True)
