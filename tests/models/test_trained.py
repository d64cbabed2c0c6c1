"""The trained model a checkpoint holds, loaded for inference."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import models

from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.training.run import train


def test_an_imagenet_checkpoint_with_gray_repeat_loads_everywhere(make_cfg, tmp_path: Path) -> None:
    weights = tmp_path / "resnet50.pth"
    torch.save(models.resnet50().state_dict(), weights)
    train(
        make_cfg(
            "model=resnet50",
            "model.pretrained=false",
            f"model.weights_path={weights}",
            "model.net.gray=repeat",
            "debug=limit",
            "trainer.max_epochs=1",
            "data.batch_size=8",
            "test=false",
        )
    )
    trained = LoadedCheckpoint.load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert trained.model.net.scale.shape == (1, 3, 1, 1)  # ImageNet's three channels, as saved
    with torch.no_grad():
        assert trained.model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
