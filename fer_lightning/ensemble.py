"""python -m fer_lightning.ensemble (conf/ensemble.yaml): two or more trained checkpoints as one model."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.models.ensemble import write_ensemble


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="ensemble")
@user_errors
def main(cfg: DictConfig) -> None:
    write_ensemble(cfg)


if __name__ == "__main__":
    main()
