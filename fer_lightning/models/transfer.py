"""torchvision VGG16 and ResNet50 for 48x48 grayscale faces: a new 7-way head with dropout.

With ImageNet weights the inputs are re-normalised inside the net with ImageNet's statistics (taken
from the weights enum), whatever normalisation the data pipeline used: the pretrained filters see
the input distribution they were trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision import models

from fer_lightning.models.weights import imagenet_state_dict, load_checked, load_local_weights

GrayMode = Literal["fold", "repeat"]


class TransferNet(nn.Module):
    """``backbone`` maps an image to a feature vector; ``head`` is new: Dropout -> Linear(num_classes).

    ``scale`` and ``shift`` (per input channel) map the data pipeline's normalised gray image to the
    backbone's expected input; ``repeat_gray`` copies the gray channel into three first. ``input_size``: the side of
    the faces it is given (the model summary counts its FLOPs at that side).
    """

    def __init__(
        self,
        backbone: nn.Module,
        features: int,
        num_classes: int,
        dropout: float,
        repeat_gray: bool,
        scale: Tensor,
        shift: Tensor,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
        self.repeat_gray = repeat_gray
        self.register_buffer("scale", scale.reshape(1, -1, 1, 1))
        self.register_buffer("shift", shift.reshape(1, -1, 1, 1))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        # The input mapping has one value per channel the backbone sees (three for ImageNet weights with
        # gray=repeat, one otherwise); a net rebuilt from a checkpoint, without ImageNet, takes the saved shape.
        for name in ("scale", "shift"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)
        return self.head(self.backbone(x * self.scale + self.shift))


def fold_to_gray(conv: nn.Conv2d) -> nn.Conv2d:
    """An RGB conv turned into a 1-channel one with the same response to a gray image (R = G = B)."""
    gray = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        gray.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            gray.bias.copy_(conv.bias)
    return gray


def _torchvision(
    builder: Callable[..., nn.Module], weights: str, pretrained: bool, weights_path: str | None
) -> nn.Module:
    """The full torchvision model with ImageNet weights checked against it, before any surgery."""
    net = builder(weights=None)
    if weights_path:
        load_local_weights(net, weights_path)
    elif pretrained:
        load_checked(net, imagenet_state_dict(weights), weights)
    return net


def _input_mapping(
    weights: str, imagenet: bool, gray: GrayMode, data_mean: float, data_std: float
) -> tuple[Tensor, Tensor]:
    """(scale, shift) taking data normalised with (data_mean, data_std) to ImageNet's normalisation.

    Identity without ImageNet weights. With ``fold`` the three channels' statistics are averaged,
    as the folded filter sees one channel.
    """
    if not imagenet:
        return torch.ones(1), torch.zeros(1)
    preset = models.get_weight(weights).transforms()
    mean, std = torch.tensor(preset.mean), torch.tensor(preset.std)
    if gray == "fold":
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    return data_std / std, (data_mean - mean) / std


def _fold(gray: GrayMode) -> bool:
    if gray not in ("fold", "repeat"):
        raise ValueError(f"model.net.gray={gray!r}: expected fold or repeat")
    return gray == "fold"


def _with_head(
    backbone: nn.Module,
    features: int,
    num_classes: int,
    dropout: float,
    imagenet: bool,
    weights: str,
    gray: GrayMode,
    data_mean: float,
    data_std: float,
    image_size: int,
) -> TransferNet:
    scale, shift = _input_mapping(weights, imagenet, gray, data_mean, data_std)
    return TransferNet(backbone, features, num_classes, dropout, gray == "repeat", scale, shift, image_size)


def vgg16(
    num_classes: int,
    dropout: float,
    pretrained: bool = False,
    weights_path: str | None = None,
    weights: str = "VGG16_Weights.IMAGENET1K_V1",
    gray: GrayMode = "fold",
    data_mean: float = 0.5134,
    data_std: float = 0.3066,
    image_size: int = 48,
) -> TransferNet:
    """VGG16's conv features, global-average-pooled to 512 (ImageNet's 4096-wide dense layers are dropped)."""
    net = _torchvision(models.vgg16, weights, pretrained, weights_path)
    if _fold(gray):
        net.features[0] = fold_to_gray(net.features[0])
    backbone = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    imagenet = pretrained or bool(weights_path)
    return _with_head(backbone, 512, num_classes, dropout, imagenet, weights, gray, data_mean, data_std, image_size)


def resnet50(
    num_classes: int,
    dropout: float,
    pretrained: bool = False,
    weights_path: str | None = None,
    weights: str = "ResNet50_Weights.IMAGENET1K_V2",
    gray: GrayMode = "fold",
    data_mean: float = 0.5134,
    data_std: float = 0.3066,
    image_size: int = 48,
) -> TransferNet:
    """ResNet50 up to its global pool (2048 features); its ImageNet fc is replaced by the new head."""
    net = _torchvision(models.resnet50, weights, pretrained, weights_path)
    if _fold(gray):
        net.conv1 = fold_to_gray(net.conv1)
    net.fc = nn.Identity()
    imagenet = pretrained or bool(weights_path)
    return _with_head(net, 2048, num_classes, dropout, imagenet, weights, gray, data_mean, data_std, image_size)
