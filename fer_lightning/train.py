"""python -m fer_lightning.train: compose conf/train.yaml, fit, test the best checkpoint, write the run's files."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from fer_lightning.checkpoints import StoreConfig
from fer_lightning.config import CONFIG_DIR
from fer_lightning.files import write_json

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one configuration; return its final metrics (also written to metrics.json)."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    run_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + [StoreConfig(run_cfg)]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)

    trainer.fit(model, datamodule=datamodule)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.test:
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})

    log_hparams(loggers, OmegaConf.to_container(cfg.hparams, resolve=True), metrics, cfg.hparam_metrics)
    write_json({"best_checkpoint": best, "metrics": metrics}, Path(cfg.paths.output_dir) / "metrics.json")
    log.info("Final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics


def log_hparams(loggers: list[Logger], hparams: dict, metrics: dict[str, float], names: list[str]) -> None:
    """One HPARAMS entry per run with real final metrics, under hp/ tags so the per-epoch curves stay clean."""
    final = {f"hp/{name.replace('/', '_')}": metrics[name] for name in names if name in metrics}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, metrics=final)
        else:
            logger.log_hyperparams(hparams)
        logger.save()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg).get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
