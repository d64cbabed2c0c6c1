"""torchvision VGG16 and ResNet50 for 48x48 grayscale faces: a new 7-way head with dropout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision import models

from fer_lightning.models.weights import imagenet_state_dict, load_checked, load_local_weights

GrayMode = Literal["fold", "repeat"]


class TransferNet(nn.Module):
    """``backbone`` maps an image to a feature vector; ``head`` is new: Dropout -> Linear(num_classes)."""

    def __init__(self, backbone: nn.Module, features: int, num_classes: int, dropout: float, repeat_gray: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
        self.repeat_gray = repeat_gray

    def forward(self, x: Tensor) -> Tensor:
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)
        return self.head(self.backbone(x))


def fold_to_gray(conv: nn.Conv2d) -> nn.Conv2d:
    """An RGB conv turned into a 1-channel one with the same response to a gray image (R = G = B)."""
    gray = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        gray.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            gray.bias.copy_(conv.bias)
    return gray


def _torchvision(builder: Callable[..., nn.Module], weights: str, pretrained: bool, weights_path: str | None) -> nn.Module:
    """The full torchvision model with ImageNet weights checked against it, before any surgery."""
    net = builder(weights=None)
    if weights_path:
        load_local_weights(net, weights_path)
    elif pretrained:
        load_checked(net, imagenet_state_dict(weights), weights)
    return net


def vgg16(
    num_classes: int,
    dropout: float,
    pretrained: bool = False,
    weights_path: str | None = None,
    weights: str = "VGG16_Weights.IMAGENET1K_V1",
    gray: GrayMode = "fold",
) -> TransferNet:
    """VGG16's conv features, global-average-pooled to 512 (ImageNet's 4096-wide dense layers are dropped)."""
    net = _torchvision(models.vgg16, weights, pretrained, weights_path)
    if gray == "fold":
        net.features[0] = fold_to_gray(net.features[0])
    backbone = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return TransferNet(backbone, 512, num_classes, dropout, repeat_gray=gray == "repeat")


def resnet50(
    num_classes: int,
    dropout: float,
    pretrained: bool = False,
    weights_path: str | None = None,
    weights: str = "ResNet50_Weights.IMAGENET1K_V2",
    gray: GrayMode = "fold",
) -> TransferNet:
    """ResNet50 up to its global pool (2048 features); its ImageNet fc is replaced by the new head."""
    net = _torchvision(models.resnet50, weights, pretrained, weights_path)
    if gray == "fold":
        net.conv1 = fold_to_gray(net.conv1)
    net.fc = nn.Identity()
    return TransferNet(net, 2048, num_classes, dropout, repeat_gray=gray == "repeat")
