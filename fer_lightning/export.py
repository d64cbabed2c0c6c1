"""python -m fer_lightning.export (conf/export.yaml):
a self-contained model file for serving (ONNX, TorchScript) or the compact checkpoint."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.serving.export import export


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
@user_errors
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
