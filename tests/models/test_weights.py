"""ImageNet weights: a local file loads through the same path as a download; offline errors name the file."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torchvision import models

from fer_lightning.models.transfer import resnet50, vgg16
from fer_lightning.models.weights import weights_file


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_offline_pretrained_error_names_the_file_and_folder(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected = torch_home / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    assert weights_file("ResNet50_Weights.IMAGENET1K_V2") == expected
    with pytest.raises(RuntimeError, match=r"put the file resnet50-11ad3fa6\.pth into .*hub/checkpoints"):
        resnet50(num_classes=7, dropout=0.5, pretrained=True)


def test_weights_placed_in_torch_home_are_used_by_pretrained(imagenet_resnet50: dict[str, torch.Tensor]) -> None:
    imagenet = imagenet_resnet50
    net = resnet50(num_classes=7, dropout=0.5, pretrained=True, gray="repeat")
    torch.testing.assert_close(net.backbone.layer4[2].conv3.weight, imagenet["layer4.2.conv3.weight"], rtol=0, atol=0)
    torch.testing.assert_close(net.backbone.conv1.weight, imagenet["conv1.weight"], rtol=0, atol=0)
    assert net.head[-1].out_features == 7


def test_local_weights_path_loads_and_folds_to_gray(tmp_path: Path) -> None:
    torch.manual_seed(2)
    imagenet = models.vgg16().state_dict()
    torch.save(imagenet, tmp_path / "vgg16.pth")
    net = vgg16(num_classes=7, dropout=0.5, weights_path=str(tmp_path / "vgg16.pth"))
    torch.testing.assert_close(net.backbone[0][28].weight, imagenet["features.28.weight"], rtol=0, atol=0)
    torch.testing.assert_close(net.backbone[0][0].weight, imagenet["features.0.weight"].sum(1, keepdim=True))


def test_mismatched_weights_fail_loudly(tmp_path: Path) -> None:
    torch.save(models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match=r"resnet18\.pth do not fit ResNet"):
        resnet50(num_classes=7, dropout=0.5, weights_path=str(tmp_path / "resnet18.pth"))
    with pytest.raises(FileNotFoundError, match="model.weights_path=.*missing.pth does not exist"):
        resnet50(num_classes=7, dropout=0.5, weights_path=str(tmp_path / "missing.pth"))


def test_imagenet_inputs_are_renormalised_with_imagenet_statistics(tmp_path: Path) -> None:
    from fer_lightning.models.transfer import resnet50

    torch.save(models.resnet50().state_dict(), tmp_path / "w.pth")
    net = resnet50(7, 0.0, weights_path=str(tmp_path / "w.pth"), gray="repeat", data_mean=0.5, data_std=0.25)
    gray01 = torch.rand(1, 1, 8, 8)
    x = net.repeat_gray and (gray01 - 0.5) / 0.25
    mapped = x.expand(-1, 3, -1, -1) * net.scale + net.shift
    expected = (gray01.expand(-1, 3, -1, -1) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(mapped, expected)
    plain = resnet50(7, 0.0)  # random init: inputs pass unchanged
    assert torch.equal(plain.scale, torch.ones(1, 1, 1, 1)) and torch.equal(plain.shift, torch.zeros(1, 1, 1, 1))
