"""Grad-CAM maps point at the evidence, and the report's grid is drawn from the predictions."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fer_lightning.evaluation.saliency import gradcam_maps, pick_faces, saliency_grid


def bright_patch_net() -> nn.Module:
    """A net whose class 0 score is the mean of its one conv channel: Grad-CAM must point where the input is bright."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # identity
    head = nn.Linear(1, 7, bias=False)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, 0] = 1.0
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def test_the_map_peaks_where_the_evidence_is() -> None:
    images = torch.zeros(2, 1, 16, 16)
    images[0, 0, :4, :4] = 1.0  # top left
    images[1, 0, 12:, 12:] = 1.0  # bottom right
    maps = gradcam_maps(bright_patch_net(), images, torch.tensor([0, 0]))
    assert maps.shape == (2, 16, 16) and maps.min() >= 0 and maps.max() <= 1
    assert maps[0, :4, :4].mean() > 0.9 and maps[0, 12:, 12:].mean() < 0.1
    assert maps[1, 12:, 12:].mean() > 0.9 and maps[1, :4, :4].mean() < 0.1


def test_the_grid_takes_right_and_wrong_faces_of_each_class() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 0, 1, 1, 0])
    assert pick_faces(true, predicted, 1) == [0, 1, 3, 5]  # class 0 right, wrong; class 1 right; class 2 wrong
    probabilities = np.eye(7)[predicted]
    faces = np.random.default_rng(0).integers(0, 256, (6, 16, 16), dtype=np.uint8)

    def transform(image: np.ndarray) -> dict:
        return {"image": torch.from_numpy(image / 255.0).float()[None]}

    figure = saliency_grid(bright_patch_net(), faces, transform, true, probabilities, per_class=1)
    titled = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titled == ["angry", "disgust", "disgust", "angry"]
