"""python -m fer_lightning.analyze (conf/analyze.yaml):
what is in the data and what cleaning found, as files and in TensorBoard."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.data.analysis import analyze


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="analyze")
@user_errors
def main(cfg: DictConfig) -> None:
    analyze(cfg)


if __name__ == "__main__":
    main()
