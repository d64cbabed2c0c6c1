"""Transfer learning: the frozen phase trains only the head, unfreezing comes on time at its own lr."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.utilities.model_summary import ModelSummary

from fer_lightning.models.weights import weights_file
from fer_lightning.training.callbacks import FreezeBackbone
from tests.conftest import SMALL_CNN


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers (BatchNorm running statistics included)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_frozen_phase_trains_only_the_head_then_unfreezes_at_the_configured_epoch_and_lr(
    make_cfg, imagenet_resnet50
) -> None:
    cfg = make_cfg(
        "model=resnet50",
        "data.augment=true",
        "data=synthetic",
        "data.synthetic.train=6",
        "data.synthetic.val=2",
        "data.synthetic.test=2",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "model.scheduler=null",
        "model.lr=1e-2",
        "model.backbone_lr_ratio=0.25",
        "callbacks.freeze_backbone.unfreeze_at_epoch=1",
        "trainer.max_epochs=1",
        fast=False,
    )
    model = instantiate(cfg.model)
    # Loaded through the same path as a download: the weights API found the file in TORCH_HOME.
    torch.testing.assert_close(model.net.backbone.layer1[0].conv1.weight, imagenet_resnet50["layer1.0.conv1.weight"])
    assert model.net.head[-1].out_features == 7
    datamodule = instantiate(cfg.data)
    freeze = FreezeBackbone(unfreeze_at_epoch=1)

    def trainer(epochs: int) -> L.Trainer:
        return L.Trainer(
            max_epochs=epochs,
            limit_train_batches=2,
            limit_val_batches=1,
            callbacks=[freeze],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            precision="bf16-mixed",
        )

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
def test_the_transfer_models_are_transfer_learning_and_say_offline_what_to_do(
    make_cfg, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg(f"model={model}", "data.augment=true", fast=False)  # the card's command
    assert cfg.model.pretrained is True and cfg.model.backbone_lr_ratio < 1
    assert cfg.callbacks.freeze_backbone.unfreeze_at_epoch > 0
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    file = weights_file(cfg.model.net.weights)
    with pytest.raises(InstantiationException, match="model.pretrained=false") as error:
        instantiate(cfg.model)  # before any data is read or any step is taken
    assert isinstance(error.value.__cause__, RuntimeError)
    assert file.name in str(error.value) and str(file.parent) in str(error.value)


def test_the_shared_model_config_is_not_a_model(make_cfg) -> None:
    from hydra.errors import ConfigCompositionException, MissingConfigException

    with pytest.raises((MissingConfigException, ConfigCompositionException)):
        make_cfg("model=classifier")


@pytest.mark.parametrize("model", ["vgg16", "resnet50"])
def test_a_random_backbone_trains_with_the_head_at_one_rate_unless_told_otherwise(make_cfg, model: str) -> None:
    """model.pretrained=false is not transfer learning: nothing to protect, so nothing frozen or slowed."""
    cfg = make_cfg(f"model={model}", "model.pretrained=false")
    assert cfg.model.backbone_lr_ratio == 1.0 and cfg.callbacks.freeze_backbone.unfreeze_at_epoch == 0
    told = make_cfg(f"model={model}", "model.pretrained=false", "model.backbone_lr_ratio=0.1")
    assert told.model.backbone_lr_ratio == 0.1  # a ratio given on the command line still counts


@pytest.mark.parametrize("model", ["cnn", "vgg16", "resnet50"])
def test_the_model_summary_counts_the_flops_of_every_net(make_cfg, model: str) -> None:
    cfg = make_cfg(f"model={model}", *(SMALL_CNN if model == "cnn" else ["model.pretrained=false"]))
    assert ModelSummary(instantiate(cfg.model), max_depth=1).total_flops > 0
