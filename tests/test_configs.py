"""Every model x augment configuration composes, instantiates and maps a batch to 7 logits."""

from __future__ import annotations

import albumentations as A
import pytest
import torch
from hydra.utils import instantiate

from fer_lightning.core.classes import NUM_CLASSES
from fer_lightning.data.datamodule import FERDataModule
from tests.conftest import SMALL_CNN


@pytest.mark.parametrize("model", ["cnn", "vgg16", "resnet50"])
@pytest.mark.parametrize("augment", [False, True])
def test_model_and_augment_configs_instantiate(make_cfg, model: str, augment: bool) -> None:
    cfg = make_cfg(f"model={model}", f"data.augment={str(augment).lower()}", "model.pretrained=false")
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, FERDataModule)
    train_steps = [type(t) for t in datamodule.transforms["train"].transforms]
    assert (A.Affine in train_steps and A.HorizontalFlip in train_steps) == augment
    assert A.Affine not in [type(t) for t in datamodule.transforms["val"].transforms]
    net = instantiate(cfg.model).net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 48, 48)).shape == (2, NUM_CLASSES)
    assert net.head[-1].out_features == NUM_CLASSES


@pytest.mark.parametrize("model", ["cnn", "resnet50"])
def test_image_size_sets_the_input_size(make_cfg, model: str) -> None:
    cfg = make_cfg(f"model={model}", "data.image_size=96", *(SMALL_CNN if model == "cnn" else ["model.pretrained=false"]))
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, _ = next(iter(datamodule.train_dataloader()))
    assert images.shape[1:] == (1, 96, 96)
    net = instantiate(cfg.model).net.eval()
    with torch.no_grad():
        assert net(images[:2]).shape == (2, NUM_CLASSES)


def test_gray_repeat_mode_matches_fold_mode(make_cfg) -> None:
    """Folding the first conv's RGB filters computes what repeating the gray channel does."""
    torch.manual_seed(0)
    repeat = instantiate(make_cfg("model=resnet50", "model.net.gray=repeat", "model.pretrained=false").model).net.eval()
    state = {k: v for k, v in repeat.state_dict().items()}
    folded = instantiate(make_cfg("model=resnet50", "model.net.gray=fold", "model.pretrained=false").model).net.eval()
    state["backbone.conv1.weight"] = state["backbone.conv1.weight"].sum(1, keepdim=True)
    folded.load_state_dict(state)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), repeat(x), rtol=1e-4, atol=1e-4)
