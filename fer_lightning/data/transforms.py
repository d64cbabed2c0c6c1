"""Albumentations pipelines: the same scale-and-normalise tail for every split, augmentation on train only."""

from __future__ import annotations

from collections.abc import Iterable

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from fer_lightning.data.readers import FACE_SIZE


def build_transform(
    image_size: int, mean: float, std: float, augmentations: Iterable[A.BasicTransform] = ()
) -> A.Compose:
    """uint8 (48, 48) face -> float tensor (1, image_size, image_size), augmented first at native size.

    Augmenting before the resize keeps the warps cheap when transfer models ask for 224x224.
    """
    steps = list(augmentations)
    if image_size != FACE_SIZE:
        steps.append(A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR))
    steps += [A.Normalize(mean=(mean,), std=(std,), max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps)
