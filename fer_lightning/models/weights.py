"""Loading weights loudly: ImageNet through torchvision's weights API, or a local file, checked key by key."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from fer_lightning.core.errors import WeightsUnavailable


def load_checked(module: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> None:
    """Strict load whose error names the weights' origin, so a wrong file never half-loads."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ValueError(f"weights from {origin} do not fit {type(module).__name__}: {error}") from error


def load_local_weights(module: nn.Module, path: str | Path) -> None:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.weights_path={path} does not exist")
    load_checked(module, torch.load(path, map_location="cpu", weights_only=True), str(path))


def weights_file(weights_name: str) -> Path:
    """Where torch.hub caches (and looks for) the file of a torchvision weights enum, e.g.
    ResNet50_Weights.IMAGENET1K_V2."""
    url = torchvision.models.get_weight(weights_name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def imagenet_state_dict(weights_name: str) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision weights enum: from the TORCH_HOME cache, else downloaded into it."""
    weights = torchvision.models.get_weight(weights_name)
    file = weights_file(weights_name)
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except OSError as error:  # URLError, socket and HTTP errors are all OSErrors
        raise WeightsUnavailable(
            f"could not download {weights_name} from {weights.url} ({error}). Without network, put the file "
            f"{file.name} into {file.parent} (set TORCH_HOME to move it), "
            f"or pass model.weights_path=<path to {file.name}>; "
            "or train from random init with model.pretrained=false (then it is not transfer learning)"
        ) from error
