"""Compose the real configs inside a Hydra context, on small data the tests make themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fer_lightning.core.config import CONFIG_DIR

# Small enough for seconds per run on two cores; every test can override any of it.
FAST = [
    "data=synthetic",
    "data.synthetic.train=30",
    "data.synthetic.val=8",
    "data.synthetic.test=8",
    "data.batch_size=16",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
SMALL_CNN = ["model.net.channels=[8,16]", "model.net.dense=[32]"]


def compose_cfg(output_dir: Path, *overrides: str, config: str = "train", fast: bool = True) -> DictConfig:
    """A composed config (train.yaml unless ``config`` says) with ${hydra:...} resolvable and outputs in
    ``output_dir``; ``fast`` puts the FAST overrides first."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config, overrides=[*(FAST if fast else []), *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """cfg(*overrides, config=..., fast=...) -> compose_cfg with outputs in tmp_path/run."""
    yield lambda *overrides, config="train", fast=True: compose_cfg(tmp_path / "run", *overrides, config=config, fast=fast)
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small scratch CNN trained on synthetic faces, shared by the tests that only need a checkpoint."""
    from fer_lightning.training.run import train

    run = tmp_path_factory.mktemp("trained") / "run"
    train(compose_cfg(run, *SMALL_CNN, "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "test=false"))
    GlobalHydra.instance().clear()
    return run / "checkpoints" / "last.ckpt"
