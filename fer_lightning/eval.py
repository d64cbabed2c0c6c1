"""python -m fer_lightning.eval (conf/eval.yaml):
a checkpoint's report on one split, from the checkpoint alone."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.evaluation.evaluate import evaluate


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
@user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
