"""python -m fer_lightning.train: compose conf/train.yaml, instantiate, fit, test the best checkpoint, return the
metrics. What a run writes besides checkpoints (reports, metrics.json, the HPARAMS entry) is done by its callbacks
(training/callbacks.py: RunReports, RunRecord)."""

from __future__ import annotations

import logging
import math
import signal
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fer_lightning.core.files import write_json
from fer_lightning.core.validation import check_value
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.models.classifier import EmotionClassifier
from fer_lightning.models.schedules import check_horizon
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.training import dashboards
from fer_lightning.training.callbacks import (
    EpochLog,
    GatherPredictions,
    LoggedModelSummary,
    RunRecord,
    RunReports,
    ScheduleOverNewHorizon,
    ShortProgressBar,
    StoreConfig,
    ValidateResumedEpoch,
    best_checkpoint,
)
from fer_lightning.training.resume import check_shapes, requeued_checkpoint, resume_state

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one configuration; return its final metrics (also in metrics.json)."""
    check_run_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    log.info("Run folder: %s", cfg.paths.output_dir)
    resume = resume_point(cfg)
    datamodule: FERDataModule = instantiate(cfg.data)
    datamodule.check_source()
    model: EmotionClassifier = instantiate(cfg.model, teacher=load_teacher(cfg))
    if resume.path:
        check_shapes(resume.path, resume.shapes, model)
    callbacks, record = run_callbacks(cfg)
    loggers = [instantiate_logger(c, resume.first_step) for c in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, **once_per_sweep(datamodule))

    interruptible(trainer, trainer.fit, model, datamodule=datamodule, ckpt_path=resume.path)
    if cfg.test and not len(datamodule.splits["test"]):
        log.info("Test skipped: data.root=%s has no test faces (no test/ folder, or no Usage column)", cfg.data.root)
    elif cfg.test:
        best = best_checkpoint(trainer) or None
        interruptible(trainer, trainer.test, model, datamodule=datamodule, ckpt_path=best, verbose=False)
    return record.finish(trainer)


def check_run_config(cfg: DictConfig) -> None:
    """What only a training run can get wrong, said before anything is built."""
    if cfg.trainer.get("max_epochs") == 0:  # Lightning would fit nothing, then test and report the untrained net
        raise ValueError(
            "trainer.max_epochs=0: expected at least 1 (-1: no limit); "
            "to test a trained checkpoint, use python -m fer_lightning.eval ckpt_path=..."
        )
    if cfg.hparams_tab not in ("varied", "all"):
        raise ValueError(f"hparams_tab={cfg.hparams_tab}: expected varied or all")
    if cfg.seed is not None:  # null: Lightning draws one
        check_value("seed", cfg.seed, int, 0, 2**32 - 1)  # numpy's range; "abc" would fail inside Lightning
    check_horizon(cfg.trainer, cfg.model)


class Resume(NamedTuple):
    """Where a run goes on from: the checkpoint (None: a fresh run), the weights' shapes it holds, and the first
    TensorBoard step the resumed run logs (what the interrupted run logged from there on is hidden)."""

    path: Path | None
    shapes: dict[str, tuple[int, ...]]
    first_step: int | None


def resume_point(cfg: DictConfig) -> Resume:
    """A requeued SLURM job goes on from its newest checkpoint, any other run from ``ckpt_path`` (or starts fresh)."""
    ckpt_path = requeued_checkpoint(Path(cfg.paths.output_dir)) or cfg.ckpt_path
    if not ckpt_path:
        return Resume(None, {}, None)
    path, epoch, shapes = resume_state(ckpt_path, cfg.paths.root, cfg.model.net._target_)
    return Resume(path, shapes, epoch + 1)  # TensorBoard counts epochs from 1


def load_teacher(cfg: DictConfig) -> nn.Module | None:
    """``model.teacher``: the trained checkpoint to distil from (loaded as data, never run as code:
    models/trained.py), for the LightningModule; its input side must be the net's."""
    if not cfg.model.get("teacher"):
        return None
    teacher = LoadedCheckpoint.load(cfg.model.teacher, cfg.paths.root, device="cpu").model
    sides = getattr(teacher.net, "input_size", None), OmegaConf.select(cfg, "model.net.image_size", default=None)
    if sides[0] != sides[1]:
        raise ValueError(
            f"model.teacher={cfg.model.teacher} takes {sides[0]}-pixel faces, this run's net {sides[1]}: "
            "a teacher is trained on the same input (data.image_size, data.crop_size)"
        )
    return teacher


def run_callbacks(cfg: DictConfig) -> tuple[list[L.Callback], RunRecord]:
    """conf/callbacks' (one set to null is off), then the ones every run has; the last writes the run's record."""
    out = Path(cfg.paths.output_dir)
    run_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    gather = GatherPredictions()
    reports = RunReports(gather, instantiate(cfg.report), out / "report")
    config_yaml = OmegaConf.to_yaml(run_cfg, resolve=True)
    record = RunRecord(out, dashboards.hparams_entry(cfg, out), reports, config_yaml, cfg.paths.root)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += [StoreConfig(run_cfg), gather, reports, record, ScheduleOverNewHorizon(), ValidateResumedEpoch()]
    callbacks.append(EpochLog())  # a line per epoch where there is no progress bar (a log file)
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(ShortProgressBar())
    if cfg.trainer.get("enable_model_summary", True) and not later_sweep_job():
        callbacks.append(LoggedModelSummary())  # Lightning's own: a rich table cut at 80 columns, not in train.log
    return callbacks, record


def later_sweep_job() -> bool:
    """A sweep's job after its first: the data tables and the model summary were printed by job 0."""
    hydra = HydraConfig.get()
    return hydra.mode == RunMode.MULTIRUN and hydra.job.num > 0


def once_per_sweep(datamodule: FERDataModule) -> dict[str, Any]:
    """The data tables and the model summary once per sweep (trainer keyword arguments)."""
    if not later_sweep_job():
        return {}
    datamodule.tables_level = logging.DEBUG
    return {"enable_model_summary": False}


def interruptible(trainer: L.Trainer, stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A trainer stage whose Ctrl-C exits 130, as a shell expects of SIGINT: Lightning ends a KeyboardInterrupt
    with ``sys.exit(1)``, after its callbacks saved last.ckpt (CheckpointOnInterrupt)."""
    try:
        return stage(*args, **kwargs)
    except SystemExit as stop:
        if stop.code == 1 and trainer.interrupted and not trainer.received_sigterm:
            raise SystemExit(128 + signal.SIGINT) from None
        raise


def instantiate_logger(cfg: DictConfig, resume_step: int | None) -> Logger:
    """A resumed run's TensorBoard logger hides what the interrupted run logged after its checkpoint (SummaryWriter's
    purge_step), so the epochs it re-runs are not drawn twice."""
    if resume_step is not None and cfg._target_.endswith("TensorBoardLogger"):
        return instantiate(cfg, purge_step=resume_step)
    return instantiate(cfg)


def train_job(cfg: DictConfig) -> float | None:
    """One job of a run or a sweep: the metric a sweeper optimises; a failed sweep job is recorded, not raised."""
    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    devices = cfg.trainer.get("devices", 1)
    several = (
        devices == -1
        or (isinstance(devices, int) and devices > 1)
        or (not isinstance(devices, (int, str)) and len(devices) > 1)
    )
    # Under SLURM (hydra/launcher=slurm) SLURM starts every process and nothing relaunches the command line.
    if sweep and (str(cfg.trainer.get("strategy", "")).startswith("ddp") or several) and not SLURMEnvironment.detect():
        raise ValueError(
            f"trainer=ddp or trainer.devices={devices} inside a sweep (-m): DDP relaunches the command line in every "
            "process, so each would start the whole sweep again. Sweep with one device per job (trainer=cpu or "
            "trainer=gpu) and scale out with a Hydra launcher (e.g. hydra/launcher=slurm); "
            "use several devices for one big run."
        )
    try:
        return train(cfg).get(cfg.optimized_metric)
    except SIGTERMException:  # a SystemExit with status 0: an interrupted run must never look finished
        raise SystemExit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:  # Ctrl-C outside Lightning's stages (between fit and test): no traceback either
        log.info("Interrupted (Ctrl-C)")
        raise SystemExit(128 + signal.SIGINT) from None
    except Exception as error:
        if not sweep:
            raise
        # One failed job (a bad value, out of memory, divergence) must not end the sweep: record it for the
        # leaderboard and hand the sweeper a NaN, which it treats as a failed trial.
        log.exception("Job failed: %s", error)
        write_json(
            {
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
            },
            Path(cfg.paths.output_dir) / "metrics.json",
        )
        return math.nan
