"""A trained net's class probabilities over a loader, optionally test-time augmented."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import ten_crop
from tqdm.auto import tqdm

from fer_lightning.core.classes import NUM_CLASSES
from fer_lightning.core.console import on_terminal

TTA = Literal["none", "hflip", "tencrop"]
TTA_MODES: tuple[TTA, ...] = ("none", "hflip", "tencrop")  # cheapest first


def tta_views(images: Tensor, tta: TTA, crop_fraction: float, crop_size: int | None = None) -> list[Tensor]:
    """The views whose softmax outputs are averaged: the image, its mirror, or ten crops (corners and
    centre, and their mirrors), as in the best FER-2013 results. A net trained on random crops
    (``crop_size``) gets ten crops of that side from the whole face; any other net gets crops of
    ``crop_fraction`` of the side, resized back to its input size."""
    if tta == "none":
        return [images]
    if tta == "hflip":
        return [images, images.flip(-1)]
    if tta == "tencrop":
        if crop_size:
            return list(ten_crop(images, [crop_size, crop_size]))
        size = images.shape[-1]
        crops = ten_crop(images, [round(size * crop_fraction)] * 2)
        return [F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False) for c in crops]
    raise ValueError(f"eval.tta={tta!r}: expected none, hflip or tencrop")


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    loader: DataLoader,
    tta: TTA = "none",
    crop_fraction: float = 0.9,
    autocast: AbstractContextManager | None = None,
    crop_size: int | None = None,
    description: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, classes), true labels (N,)) over a loader, in the loader's order.

    ``autocast`` is the checkpoint's (LoadedCheckpoint.autocast), so an evaluation reproduces the logged
    numbers. With ten-crop TTA of a net trained on crops, the loader gives whole faces. ``description``: a
    progress bar with that label.
    """
    model.eval()
    device = next(model.parameters()).device
    probabilities, labels = [], []
    for images, targets in tqdm(
        loader, desc=description, unit="batch", disable=not description or not on_terminal(), leave=False
    ):
        images = images.to(device)
        with autocast or nullcontext():
            views = [model(view).float().softmax(-1) for view in tta_views(images, tta, crop_fraction, crop_size)]
        probabilities.append(torch.stack(views).mean(0).cpu())
        labels.append(targets)
    if not probabilities:
        return np.empty((0, NUM_CLASSES), np.float32), np.empty(0, np.int64)
    return torch.cat(probabilities).numpy(), torch.cat(labels).numpy()
