"""python -m fer_lightning.eval: a checkpoint's report on one split, from the checkpoint alone."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.checkpoints import store_temperature
from fer_lightning.core.console import aligned_table
from fer_lightning.core.files import write_json
from fer_lightning.core.units import shown
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.evaluation.calibration import fit_temperature
from fer_lightning.evaluation.inference import TTA, TTA_MODES, predict_probabilities
from fer_lightning.evaluation.predictions import split_predictions
from fer_lightning.evaluation.reports import write_split_report
from fer_lightning.models.trained import LoadedCheckpoint

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Write the report of ``cfg.ckpt_path`` on ``cfg.eval.split`` into the run's folder; return its metrics."""
    out = Path(cfg.paths.output_dir)
    trained = LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root)
    data_cfg = trained.config.data
    with open_dict(data_cfg):
        data_cfg.merge_with({k: v for k, v in cfg.data.items() if v is not None})
        data_cfg.cache_dir = cfg.data.cache_dir  # this machine's, never the one the checkpoint was trained with
        data_cfg.report_dir = str(out)
    datamodule: FERDataModule = instantiate(data_cfg)
    split, tta = cfg.eval.split, cfg.eval.tta
    datamodule.setup(split)
    if split not in datamodule.splits or not len(datamodule.splits[split]):
        raise ValueError(f"eval.split={split}: data.root={data_cfg.root} has no images in that split")
    if tta == "auto":
        tta = choose_tta(trained, datamodule, cfg.eval.crop_fraction, out)
    temperature = calibrate(trained, datamodule, split, tta, cfg) if cfg.eval.calibrate else trained.temperature
    probabilities, true = predictions(trained, datamodule, split, tta, cfg.eval.crop_fraction)
    with SummaryWriter(str(out / "tensorboard")) as writer:
        metrics = write_split_report(
            split_predictions(datamodule, split, probabilities, true),
            out,
            instantiate(cfg.report),
            title=f"{split} (tta={tta})",
            run_name=str(trained.path),
            writer=writer,
            net=trained.model.net,
            transform=datamodule.transforms["val"],
            temperature=None if temperature == 1.0 else temperature,
        )
    log.info(
        "%s split (tta=%s, %d faces): accuracy %s, macro F1 %s",
        split,
        tta,
        len(true),
        shown("acc", metrics["acc"]),
        shown("f1", metrics["f1"]),
    )
    log.info(
        "%s on %s, %s split:\n%s",
        trained.path,
        data_cfg.root or "synthetic",
        split,
        aligned_table({name: shown(name, v) if isinstance(v, float) else v for name, v in headline(metrics).items()}),
    )
    log.info("Report written to %s", out)
    return metrics


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """The numbers eval's summary shows; per-class F1, weighted averages and the leakage split stay in the report
    (report.md, metrics.json)."""
    detail = ("f1_", "weighted_", "images_", "acc_", "classes_present")
    return {name: value for name, value in metrics.items() if not name.startswith(detail)}


def predictions(
    trained: LoadedCheckpoint, datamodule: FERDataModule, split: str, tta: TTA, crop_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) of ``split`` with test-time augmentation ``tta``."""
    tencrop_of_crops = tta == "tencrop" and bool(trained.crop_size)  # ten crops of the net's side, from whole faces
    return predict_probabilities(
        trained.model,
        datamodule.dataloader(split, whole=tencrop_of_crops),
        tta,
        crop_fraction,
        trained.autocast(),
        trained.crop_size if tencrop_of_crops else None,
        description=f"Evaluating {split} (tta={tta})",
    )


def require_val(datamodule: FERDataModule, why: str) -> None:
    """The val split set up, or one line saying why it is needed and that this data has none."""
    datamodule.setup("validate")
    if not len(datamodule.splits["val"]):
        raise ValueError(f"{why}, and this data has none")


def calibrate(trained: LoadedCheckpoint, datamodule: FERDataModule, split: str, tta: TTA, cfg: DictConfig) -> float:
    """``eval.calibrate=true``: one temperature fitted on val's predictions (same TTA) by minimising their NLL, so
    the split it is applied to stays unseen. With ``eval.store_temperature`` it is written into the checkpoint,
    where predict, the Python API and export find it (the released default model's file is left alone)."""
    require_val(datamodule, "eval.calibrate=true fits the temperature on the val split")
    if split == "val":
        log.warning("eval.calibrate=true with eval.split=val: the temperature is fitted and scored on the same faces")
    probabilities, true = predictions(trained, datamodule, "val", tta, cfg.eval.crop_fraction)
    temperature = fit_temperature(probabilities, true, cfg.eval.temperature_max_iter)
    log.info("Temperature fitted on val (%d faces, tta=%s): %.4f", len(true), tta, temperature)
    if cfg.eval.store_temperature and not trained.is_default_model:
        served = temperature
        if tta != "none":  # predict and export run the model once per face: fit the stored one that way too
            served = fit_temperature(
                *predictions(trained, datamodule, "val", "none", cfg.eval.crop_fraction), cfg.eval.temperature_max_iter
            )
        store_temperature(trained.path, served)
        log.info(
            "Temperature %.4f (val, tta=none) stored in %s: predict and export apply it from now on",
            served,
            trained.path,
        )
    elif cfg.eval.store_temperature:
        log.info("Not stored: %s is the released default model (its file is left as shipped)", trained.path)
    return temperature


def choose_tta(trained: LoadedCheckpoint, datamodule: FERDataModule, crop_fraction: float, out: Path) -> TTA:
    """``eval.tta=auto``: the mode with the best val accuracy (a tie goes to the cheaper one), chosen on val
    only, so the test number it leads to stays honest. The scores go to tta_on_val.json."""
    require_val(datamodule, "eval.tta=auto chooses on the val split (or give eval.tta=none|hflip|tencrop)")
    scores = {}
    for mode in TTA_MODES:  # cheapest first
        probabilities, true = predictions(trained, datamodule, "val", mode, crop_fraction)
        scores[mode] = float((probabilities.argmax(1) == true).mean())
    chosen = max(TTA_MODES, key=lambda mode: (scores[mode], -TTA_MODES.index(mode)))
    write_json({"val_accuracy": scores, "chosen": chosen}, out / "tta_on_val.json")
    log.info(
        "eval.tta=auto: val accuracy %s -> %s", ", ".join(f"{m} {shown('acc', a)}" for m, a in scores.items()), chosen
    )
    return chosen
