"""Checkpoints that carry the config they were trained with, so eval and predict need nothing else."""

from __future__ import annotations

from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

CONFIG_KEY = "fer_lightning_config"


class StoreConfig(L.Callback):
    """Adds the run's resolved config (plain dicts and lists: safe for weights_only loading) to every checkpoint."""

    def __init__(self, cfg: DictConfig) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config
