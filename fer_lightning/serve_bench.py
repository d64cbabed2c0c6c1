"""python -m fer_lightning.serve_bench (conf/serve_bench.yaml):
load on the web server over loopback, as numbers: requests/s, latency percentiles, errors, memory."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import user_errors
from fer_lightning.tools.serve_bench import serve_bench


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="serve_bench")
@user_errors
def main(cfg: DictConfig) -> None:
    serve_bench(cfg)


if __name__ == "__main__":
    main()
