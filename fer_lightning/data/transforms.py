"""Albumentations pipelines: the same scale-and-normalise tail for every split, augmentation on train only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from fer_lightning.core.classes import FACE_SIZE

Crop = Literal["random", "center", "none"]


def build_transform(
    image_size: int,
    mean: float,
    std: float,
    augmentations: Iterable[A.BasicTransform] = (),
    crop_size: int | None = None,
    crop: Crop = "none",
) -> A.Compose:
    """uint8 (48, 48) face -> float tensor (1, side, side), augmented first at native size.

    Augmenting before the resize keeps the warps cheap when transfer models ask for 224x224. With
    ``crop_size`` the net sees crops of the resized face (random in training, the centre in evaluation,
    ten of them with ten-crop TTA, which needs the whole face: ``crop="none"``).
    """
    steps = list(augmentations)
    if image_size != FACE_SIZE:
        steps.append(A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR))
    if crop_size and crop != "none":
        if not 0 < crop_size <= image_size:
            raise ValueError(f"data.crop_size={crop_size}: expected a side between 1 and data.image_size={image_size}")
        steps.append((A.RandomCrop if crop == "random" else A.CenterCrop)(crop_size, crop_size))
    steps += [A.Normalize(mean=(mean,), std=(std,), max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps)


def eval_transform(data: Mapping, whole: bool = False) -> A.Compose:
    """The eval pipeline a data config (a checkpoint's ``data``) trains with: resize, centre crop (none when ``whole``,
    for ten-crop TTA), normalise."""
    crop_size = data.get("crop_size")
    return build_transform(data["image_size"], data["mean"], data["std"], (), crop_size, "none" if whole else "center")
