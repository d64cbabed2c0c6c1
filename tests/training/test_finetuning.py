"""Transfer learning: the frozen phase trains only the head, unfreezing comes on time at its own lr."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torchvision import models

from fer_lightning.training.callbacks import FreezeBackbone
from fer_lightning.models.weights import weights_file


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers (BatchNorm running statistics included)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture
def imagenet_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """A stand-in 'downloaded' ResNet50 ImageNet file in TORCH_HOME, as the weights API would leave it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    state = models.resnet50().state_dict()
    file = weights_file("ResNet50_Weights.IMAGENET1K_V2")
    file.parent.mkdir(parents=True)
    torch.save(state, file)
    return state


def test_frozen_phase_trains_only_the_head_then_unfreezes_at_the_configured_epoch_and_lr(make_cfg, imagenet_file) -> None:
    cfg = make_cfg(
        "model=resnet50", "data.augment=true", "data=synthetic", "data.synthetic.train=6", "data.synthetic.val=2",
        "data.synthetic.test=2", "data.batch_size=8", "data.num_workers=0", "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1", "model.scheduler=null", "model.lr=1e-2", "model.backbone_lr_ratio=0.25",
        "callbacks.freeze_backbone.unfreeze_at_epoch=1", "trainer.max_epochs=1", fast=False,
    )
    model = instantiate(cfg.model)
    # Loaded through the same path as a download: the weights API found the file in TORCH_HOME.
    torch.testing.assert_close(model.net.backbone.layer1[0].conv1.weight, imagenet_file["layer1.0.conv1.weight"])
    assert model.net.head[-1].out_features == 7
    datamodule = instantiate(cfg.data)
    freeze = FreezeBackbone(unfreeze_at_epoch=1)

    def trainer(epochs: int) -> L.Trainer:
        return L.Trainer(max_epochs=epochs, limit_train_batches=2, limit_val_batches=1, callbacks=[freeze],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, precision="bf16-mixed")

    backbone, head = snapshot(model.net.backbone), snapshot(model.net.head)
    first = trainer(1)
    first.fit(model, datamodule=datamodule)
    assert changed(backbone, snapshot(model.net.backbone)) == set()  # weights and BatchNorm buffers untouched
    assert changed(head, snapshot(model.net.head)) == {"1.weight", "1.bias"}
    lrs = {g["name"]: g["lr"] for g in first.optimizers[0].param_groups}
    assert lrs == {"head": 1e-2, "backbone": 1e-2 * 0.25}

    backbone = snapshot(model.net.backbone)
    second = trainer(2)
    second.fit(model, datamodule=datamodule, ckpt_path=None)
    # trainer(2) starts at epoch 0 again: epoch 0 frozen, epoch 1 (the configured one) unfreezes.
    after = snapshot(model.net.backbone)
    assert "layer1.0.conv1.weight" in changed(backbone, after)
    assert "layer1.0.bn1.running_mean" in changed(backbone, after)
    assert all(p.requires_grad for p in model.net.backbone.parameters())


@pytest.mark.parametrize("model", ["vgg16", "resnet50"])
def test_the_transfer_models_are_transfer_learning_and_say_offline_what_to_do(make_cfg, model: str, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_cfg(f"model={model}", "data.augment=true", fast=False)  # the card's command
    assert cfg.model.pretrained is True and cfg.model.backbone_lr_ratio < 1
    assert cfg.callbacks.freeze_backbone.unfreeze_at_epoch > 0
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    file = weights_file(cfg.model.net.weights)
    with pytest.raises(Exception, match="model.pretrained=false") as error:
        instantiate(cfg.model)  # before any data is read or any step is taken
    assert file.name in str(error.value) and str(file.parent) in str(error.value)


def test_the_shared_model_config_is_not_a_model(make_cfg) -> None:
    from hydra.errors import ConfigCompositionException, MissingConfigException

    with pytest.raises((MissingConfigException, ConfigCompositionException)):
        make_cfg("model=classifier")


def test_imagenet_inputs_are_renormalised_with_imagenet_statistics(tmp_path: Path) -> None:
    from fer_lightning.models.transfer import resnet50

    torch.save(models.resnet50().state_dict(), tmp_path / "w.pth")
    net = resnet50(7, 0.0, weights_path=str(tmp_path / "w.pth"), gray="repeat", data_mean=0.5, data_std=0.25)
    gray01 = torch.rand(1, 1, 8, 8)
    x = net.repeat_gray and (gray01 - 0.5) / 0.25
    mapped = x.expand(-1, 3, -1, -1) * net.scale + net.shift
    expected = (gray01.expand(-1, 3, -1, -1) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(mapped, expected)
    plain = resnet50(7, 0.0)  # random init: inputs pass unchanged
    assert torch.equal(plain.scale, torch.ones(1, 1, 1, 1)) and torch.equal(plain.shift, torch.zeros(1, 1, 1, 1))
