"""python -m fer_lightning.bench (conf/bench.yaml):
the numbers behind the README's speed claims, measured in one run."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.tools.bench import bench


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="bench")
@user_errors
def main(cfg: DictConfig) -> None:
    bench(cfg)


if __name__ == "__main__":
    main()
