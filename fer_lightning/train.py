"""python -m fer_lightning.train (conf/train.yaml):
fit, test the best checkpoint (chosen on val), write the run's reports."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.training.run import train_job


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
@user_errors
def main(cfg: DictConfig) -> float | None:
    return train_job(cfg)


if __name__ == "__main__":
    main()
