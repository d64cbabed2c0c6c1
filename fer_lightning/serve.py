"""python -m fer_lightning.serve (conf/serve.yaml):
a web page and an HTTP API for the emotions of the faces in uploaded photos."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.serving.server import serve


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="serve")
@user_errors
def main(cfg: DictConfig) -> None:
    serve(cfg)


if __name__ == "__main__":
    main()
