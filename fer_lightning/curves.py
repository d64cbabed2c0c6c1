"""python -m fer_lightning.curves (conf/curves.yaml):
training runs' val curves on the same axes, per epoch and per minute."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.tools.curves import curves


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="curves")
@user_errors
def main(cfg: DictConfig) -> None:
    curves(cfg)


if __name__ == "__main__":
    main()
