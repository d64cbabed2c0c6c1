"""The scratch CNN: the seed's layer types (Conv2D, BatchNorm, MaxPool, Dropout, Flatten, Dense)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from fer_lightning.models.weights import load_local_weights


class ScratchCNN(nn.Module):
    """VGG-style blocks of [Conv3x3 -> BatchNorm -> ReLU] x convs_per_block -> MaxPool -> Dropout, then
    Flatten (or global average pooling) and Dense layers.

    Split into ``backbone`` and ``head`` like the transfer models, so fine-tuning code treats all nets alike.
    """

    def __init__(
        self,
        num_classes: int,
        dropout: float,
        image_size: int = 48,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256),
        convs_per_block: int = 2,
        block_dropout: float = 0.25,
        dense: Sequence[int] = (256,),
        pool: str = "flatten",
        dense_norm: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = image_size
        layers: list[nn.Module] = []
        for width in channels:
            for _ in range(convs_per_block):
                layers += [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                in_channels = width
            layers += [nn.MaxPool2d(2), nn.Dropout(block_dropout)]
        self.backbone = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        if side < 1:
            raise ValueError(f"image_size={image_size} is too small for {len(channels)} pooling blocks")
        if pool not in ("flatten", "avg"):
            raise ValueError(f"model.net.pool={pool!r}: expected flatten (every position to the Dense layer) or avg")
        # avg: global average pooling, a Dense layer side*side times smaller than flatten's
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if pool == "avg" else [nn.Flatten()]
        features = in_channels if pool == "avg" else in_channels * side * side
        for width in dense:
            # BatchNorm holds a Dense layer's outputs at unit scale: harmless at 256 units, but at 4096 the next
            # layer's inputs have a squared norm near 2,000 and SGD at lr 0.01 throws the class scores around
            # (Khaireddin & Chen's VGG, whose dense layers have none, stays at the majority class with it).
            norm = [nn.BatchNorm1d(width)] if dense_norm else []
            head += [nn.Linear(features, width, bias=not dense_norm), *norm, nn.ReLU(), nn.Dropout(dropout)]
            features = width
        head.append(nn.Linear(features, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


def scratch_cnn(
    num_classes: int, dropout: float, pretrained: bool = False, weights_path: str | None = None, **layout
) -> ScratchCNN:
    """Build the scratch CNN; ``weights_path`` restarts from a saved ScratchCNN state dict."""
    if pretrained:
        raise ValueError("model.pretrained=true: the scratch CNN has no ImageNet weights; use model=vgg16 or resnet50")
    net = ScratchCNN(num_classes, dropout, **layout)
    if weights_path:
        load_local_weights(net, weights_path)
    return net
