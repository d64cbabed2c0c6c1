"""python -m fer_lightning.predict (conf/predict.yaml):
the emotions of the faces in new images, videos or a camera."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.serving.predict import predict


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
@user_errors
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
