"""python -m fer_lightning.eval: a checkpoint's report on one split, from the checkpoint alone."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.checkpoints import LoadedCheckpoint
from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.inference import predict_probabilities
from fer_lightning.reports import write_report

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Write the report of ``cfg.ckpt_path`` on ``cfg.eval.split`` into the run's folder; return its metrics."""
    out = Path(cfg.paths.output_dir)
    trained = LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root)
    data_cfg = trained.config.data
    with open_dict(data_cfg):
        data_cfg.merge_with({k: v for k, v in cfg.data.items() if v is not None})
        data_cfg.report_dir = str(out)
    datamodule: FERDataModule = instantiate(data_cfg)
    split, tta = cfg.eval.split, cfg.eval.tta
    datamodule.setup(split)
    if split not in datamodule.splits or not len(datamodule.splits[split]):
        raise ValueError(f"eval.split={split}: data.root={data_cfg.root} has no images in that split")
    tencrop_of_crops = tta == "tencrop" and bool(trained.crop_size)  # ten crops of the net's side, from whole faces
    probabilities, true = predict_probabilities(
        trained.model, datamodule.dataloader(split, whole=tencrop_of_crops), tta, cfg.eval.crop_fraction,
        trained.autocast(), trained.crop_size if tencrop_of_crops else None, description=f"Evaluating {split} (tta={tta})",
    )
    with SummaryWriter(str(out / "tensorboard")) as writer:
        metrics = write_report(out, datamodule.splits[split].sources, true, probabilities, f"{split} (tta={tta})", writer,
                               run_name=str(trained.path))
    log.info("%s on %s %s split, tta=%s: %s", trained.path, data_cfg.root or "synthetic", split, tta,
             {k: round(v, 4) for k, v in metrics.items()})
    log.info("Report written to %s", out)
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
