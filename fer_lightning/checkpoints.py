"""Checkpoints that carry the config they were trained with, so eval and predict need nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.classifier import EmotionClassifier

CONFIG_KEY = "fer_lightning_config"


class StoreConfig(L.Callback):
    """Adds the run's resolved config (plain dicts and lists: safe for weights_only loading) to every checkpoint."""

    def __init__(self, cfg: DictConfig) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config


def load_classifier(ckpt_path: str | Path) -> tuple[EmotionClassifier, DictConfig]:
    """The trained module (eval mode, on CPU) and the config it was trained with, from the file alone."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if CONFIG_KEY not in checkpoint:
        raise ValueError(f"ckpt_path={path} holds no fer-lightning config: not a checkpoint written by fer_lightning.train")
    cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
    # The weights come from the checkpoint: never ask the network for ImageNet weights again.
    model: EmotionClassifier = instantiate(cfg.model, pretrained=False, weights_path=None)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"ckpt_path={path} does not fit the model its config describes: {error}") from error
    return model.eval(), cfg
