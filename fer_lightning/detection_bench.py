"""python -m fer_lightning.detection_bench (conf/detection_bench.yaml):
how often predict's face detectors find FER-2013's own test faces."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.tools.detection_bench import detection_bench


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="detection_bench")
def main(cfg: DictConfig) -> None:
    detection_bench(cfg)


if __name__ == "__main__":
    main()
