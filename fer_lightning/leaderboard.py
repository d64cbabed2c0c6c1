"""python -m fer_lightning.leaderboard (conf/leaderboard.yaml):
one table for a sweep (also written when a multirun ends)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.tools.leaderboard import rank


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="leaderboard")
@user_errors
def main(cfg: DictConfig) -> None:
    rank(cfg)


if __name__ == "__main__":
    main()
