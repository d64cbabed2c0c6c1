"""Where the model looks: Grad-CAM maps (Captum's LayerGradCam) over the faces it reads, right and wrong."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from matplotlib.figure import Figure
from torch import Tensor, nn

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.core.figures import class_rows_figure


def last_conv(net: nn.Module) -> nn.Conv2d:
    """Grad-CAM's usual layer: the last convolution, the most semantic map that still has a spatial layout."""
    convs = [module for module in net.modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(net).__name__} has no Conv2d layer for Grad-CAM")
    return convs[-1]


def gradcam_maps(net: nn.Module, images: Tensor, targets: Tensor) -> np.ndarray:
    """(N, H, W) maps in [0, 1] of the evidence for ``targets`` (class indices), at the images' resolution; for an
    ensemble (models/ensemble.py), the mean of its members' maps."""
    members = getattr(net, "members", None)
    if isinstance(members, nn.ModuleList):
        maps = np.mean([gradcam_maps(member, images, targets) for member in members], axis=0)
        return maps / np.maximum(maps.reshape(len(maps), -1).max(1), 1e-12)[:, None, None]
    net = net.eval()
    images = images.to(next(net.parameters()).device).float()
    with torch.enable_grad():
        attributions = LayerGradCam(net, last_conv(net)).attribute(
            images, target=targets.tolist(), relu_attributions=True
        )
    maps = LayerAttribution.interpolate(attributions.detach().float(), tuple(images.shape[-2:]), "bilinear")[:, 0]
    peak = maps.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]
    return (maps / peak).cpu().numpy()


def pick_faces(true: np.ndarray, predicted: np.ndarray, per_class: int) -> list[int]:
    """Per true class, the first ``per_class`` faces it got right and the first it got wrong (in split order)."""
    chosen: list[int] = []
    for label in range(NUM_CLASSES):
        for right in (True, False):
            members = np.flatnonzero((true == label) & ((predicted == label) == right))
            chosen += members[:per_class].tolist()
    return chosen


def saliency_figure(
    inputs: np.ndarray, maps: np.ndarray, true: np.ndarray, predicted: np.ndarray, split: str = "test"
) -> Figure:
    """A row per true class: each face as the net saw it with its Grad-CAM overlay, titled with the predicted class
    (red when wrong)."""
    rows = [np.flatnonzero(true == label) for label in range(NUM_CLASSES)]
    figure, axes = class_rows_figure(
        max(len(r) for r in rows),
        (1.3, 1.45),
        f"Grad-CAM on {split} faces: true class per row, right then wrong; title = predicted (red: wrong)",
    )
    for label, (row, members) in enumerate(zip(axes, rows, strict=True)):
        for ax, index in zip(row, members, strict=False):
            ax.imshow(inputs[index], cmap="gray")
            ax.imshow(maps[index], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ax.set_title(EMOTIONS[predicted[index]], fontsize=7, color="red" if predicted[index] != label else "black")
    return figure


def saliency_grid(
    net: nn.Module,
    faces: np.ndarray,
    transform: Callable[..., dict],
    true: np.ndarray,
    probabilities: np.ndarray,
    per_class: int,
    split: str = "test",
) -> Figure:
    """Grad-CAM of the predicted class for ``per_class`` right and wrong faces of each class, through ``transform``
    (the eval pipeline, so the maps are of what the net saw)."""
    predicted = probabilities.argmax(1)
    chosen = pick_faces(true, predicted, per_class)
    inputs = torch.stack([transform(image=faces[i])["image"] for i in chosen]) if chosen else torch.empty(0, 1, 1, 1)
    maps = gradcam_maps(net, inputs, torch.as_tensor(predicted[chosen])) if chosen else np.empty((0, 1, 1))
    return saliency_figure(inputs[:, 0].numpy(), maps, true[chosen], predicted[chosen], split)
