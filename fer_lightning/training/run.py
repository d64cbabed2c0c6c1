"""python -m fer_lightning.train: compose conf/train.yaml, fit, test the best checkpoint, write the run's files."""

from __future__ import annotations

import logging
import math
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.files import write_json
from fer_lightning.core.overrides import is_location, override_keys, sweep_keys
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.evaluation.reports import write_split_report
from fer_lightning.evaluation.saliency import saliency_grid
from fer_lightning.models.classifier import EmotionClassifier
from fer_lightning.training import dashboards
from fer_lightning.training.callbacks import (
    EpochLog,
    GatherPredictions,
    ScheduleOverNewHorizon,
    ShortProgressBar,
    StoreConfig,
    TimeToAccuracy,
)
from fer_lightning.training.dashboards import write_figure
from fer_lightning.training.resume import check_shapes, requeued_checkpoint, resume_state

log = logging.getLogger(__name__)


def best_checkpoint(trainer: L.Trainer) -> str:
    """The val-monitoring ModelCheckpoint's best file, "" without one (last_checkpoint is a ModelCheckpoint too)."""
    return next((c.best_model_path for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None)), "")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one configuration; return its final metrics (also written to metrics.json)."""
    if cfg.trainer.get("max_epochs") == 0:  # Lightning would fit nothing, then test and report the untrained net
        raise ValueError(
            "trainer.max_epochs=0: expected at least 1 (-1: no limit); "
            "to test a trained checkpoint, use python -m fer_lightning.eval ckpt_path=..."
        )
    if cfg.hparams_tab not in ("varied", "all"):
        raise ValueError(f"hparams_tab={cfg.hparams_tab}: expected varied or all")
    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)
    log.info("Run folder: %s", out)
    ckpt_path = requeued_checkpoint(out) or cfg.ckpt_path  # a requeued SLURM job goes on from its newest checkpoint
    resume, resume_epoch, shapes = (
        resume_state(ckpt_path, cfg.paths.root, cfg.model.net._target_) if ckpt_path else (None, 0, {})
    )
    datamodule: FERDataModule = instantiate(cfg.data)
    later_job = HydraConfig.get().mode == RunMode.MULTIRUN and HydraConfig.get().job.num > 0
    if later_job:  # the data tables and the model summary once per sweep: job 0 printed them
        datamodule.tables_level = logging.DEBUG
    model: EmotionClassifier = instantiate(cfg.model)
    if resume:
        check_shapes(resume, shapes, model)
    run_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    gather = GatherPredictions()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]  # null: off
    callbacks += [StoreConfig(run_cfg), gather, ScheduleOverNewHorizon(), EpochLog()]  # EpochLog: when no bar
    if cfg.trainer.get("enable_progress_bar", True):  # on a terminal; in a file EpochLog writes a line per epoch
        callbacks.append(ShortProgressBar())
    loggers = [instantiate_logger(c, resume_epoch if resume else None) for c in (cfg.get("logger") or {}).values()]
    summary = {"enable_model_summary": False} if later_job else {}
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, **summary)
    if trainer.is_global_zero and not resume:
        dashboards.log_layout(loggers)

    start = time.perf_counter()
    interruptible(trainer, trainer.fit, model, datamodule=datamodule, ckpt_path=resume)
    fit_seconds = time.perf_counter() - start
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    best = best_checkpoint(trainer)
    if cfg.test and not len(datamodule.splits["test"]):
        log.info("Test skipped: data.root=%s has no test faces (no test/ folder, or no Usage column)", cfg.data.root)
    elif cfg.test:
        interruptible(trainer, trainer.test, model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
        metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})
        predictions = {"test": gather.test, "val": gather.best_val}  # gathered from every process
        if trainer.is_global_zero:
            reports = write_run_reports(
                predictions,
                datamodule,
                out / "report",
                loggers,
                trainer.current_epoch,
                cfg.misclassified_per_class,
                model,
                cfg.saliency_per_class,
            )
            # Where Lightning logged the same number (test/acc, val/acc_best), its value is kept: synchronised
            # over every process, it is the one TensorBoard shows.
            metrics.update({name: value for name, value in reports.items() if name not in metrics})
    if not trainer.is_global_zero:
        return metrics

    hydra = HydraConfig.get()
    hparams, varying = knobs(cfg, list(hydra.overrides.task))
    job = hydra.job.num if hydra.mode == RunMode.MULTIRUN else None
    dashboards.log_hparams(
        loggers,
        hparams,
        hparams if cfg.hparams_tab == "all" else varying,
        cfg.hparams_whole,
        {name: metrics[name] for name in cfg.hparam_metrics if name in metrics},
        max(trainer.current_epoch - 1, 0),  # the last epoch's step: the final numbers sit at the curves' end
        dashboards.trial_name(out, job),
        OmegaConf.to_yaml(run_cfg, resolve=True),
    )
    epochs = trainer.current_epoch
    reached = next((c.minutes for c in callbacks if isinstance(c, TimeToAccuracy)), {})
    write_json(
        {
            "status": "completed",
            "best_checkpoint": best,
            "hparams": hparams,
            "metrics": metrics,
            "epochs": epochs,
            "fit_seconds": fit_seconds,
            "seconds_per_epoch": fit_seconds / max(epochs, 1),
            **reached,
        },
        out / "metrics.json",
    )
    log.info("\n%s", run_summary(metrics, best, out, cfg.paths.root))
    return metrics


def interruptible(trainer: L.Trainer, stage: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A trainer stage whose Ctrl-C exits 130, as a shell expects of SIGINT: Lightning ends a KeyboardInterrupt
    with ``sys.exit(1)``, after its callbacks saved last.ckpt (CheckpointOnInterrupt)."""
    try:
        return stage(*args, **kwargs)
    except SystemExit as stop:
        if stop.code == 1 and trainer.interrupted and not trainer.received_sigterm:
            raise SystemExit(128 + signal.SIGINT) from None
        raise


def run_summary(metrics: dict[str, float], best: str, run_dir: Path, logdir: str) -> str:
    """The few lines a run ends with: the test numbers, where the best checkpoint and the run are, how to look."""
    lines = []
    if "test/acc" in metrics:
        lines.append(
            f"Test accuracy {metrics['test/acc']:.2%}, macro F1 {metrics.get('test/f1', float('nan')):.3f} "
            f"(best val accuracy {metrics.get('val/acc_best', float('nan')):.2%})"
        )
    elif "val/acc_best" in metrics:
        lines.append(f"Best val accuracy {metrics['val/acc_best']:.2%} (no test)")
    lines += [
        f"Best checkpoint: {best or 'none'}",
        f"Run folder: {run_dir}",
        f"TensorBoard: tensorboard --logdir {logdir}",
    ]
    return "\n".join(lines)


def instantiate_logger(cfg: DictConfig, resume_step: int | None) -> Logger:
    """A resumed run's TensorBoard logger hides what the interrupted run logged after its checkpoint (SummaryWriter's
    purge_step), so the epochs it re-runs are not drawn twice."""
    if resume_step is not None and cfg._target_.endswith("TensorBoardLogger"):
        return instantiate(cfg, purge_step=resume_step)
    return instantiate(cfg)


def write_run_reports(
    predictions: dict[str, tuple[Tensor, Tensor] | None],
    datamodule: FERDataModule,
    out: Path,
    loggers: list[Logger],
    epoch: int,
    misclassified_per_class: int,
    model: EmotionClassifier,
    saliency_per_class: int,
) -> dict[str, float]:
    """The eval report files of the best weights, from the predictions the test loop (and the best val epoch)
    already made; a ``limit_test_batches`` run reports on the faces it tested. Test also goes to TensorBoard."""
    writer = next(iter(dashboards.tensorboard_writers(loggers)), None)
    ece_bins = OmegaConf.load(CONFIG_DIR / "eval.yaml").eval.ece_bins  # one bin count for every report, eval's
    metrics: dict[str, float] = {}
    for split, collected in predictions.items():
        if collected is None:  # no val epoch was the best in this process (e.g. resumed after the best one)
            continue
        probabilities, labels = (t.numpy() for t in collected)
        sources = datamodule.splits[split].sources[: len(labels)]
        report = write_split_report(
            out / split,
            sources,
            labels,
            probabilities,
            split,
            writer if split == "test" else None,
            run_name=str(out.parent),
            copy_in_train=datamodule.copy_in_train(split)[: len(labels)],
            ece_bins=ece_bins,
        )
        if split == "test":
            images = datamodule.splits["test"].images[: len(labels)]
            dashboards.log_test_figures(loggers, images, labels, probabilities, misclassified_per_class, epoch)
            if saliency_per_class:
                figure = saliency_grid(
                    model.net, images, datamodule.transforms["val"], labels, probabilities, saliency_per_class
                )
                write_figure(figure, out / split / "gradcam.png", loggers, "test/gradcam", epoch)
        metrics.update({metric_name(split, name): value for name, value in report.items() if name != "images"})
    return metrics


# The report's names for the four numbers Lightning logs too (classifier.py stage_metrics): one name per number.
LIGHTNING_NAMES = {"accuracy": "acc", "macro_f1": "f1", "macro_precision": "precision", "macro_recall": "recall"}


def metric_name(split: str, name: str) -> str:
    """One scheme across TensorBoard, metrics.json and the leaderboard: ``<stage>/<metric>``, as Lightning logs
    them; the val report is of the best epoch, hence ``val/<metric>_best`` (like ``val/acc_best``); test is always
    the best checkpoint's, so plain ``test/<metric>``."""
    name = LIGHTNING_NAMES.get(name, name)
    return f"{split}/{name}_best" if split == "val" else f"{split}/{name}"


def knobs(cfg: DictConfig, overrides: list[str]) -> tuple[dict[str, bool | int | float | str], set[str]]:
    """The HPARAMS knobs (``cfg.hparams``, plus any other overridden key or group, by its full name) with their real
    types, and the names of those that tell this run apart: in a sweep the swept ones, in a single run the
    overridden ones (TensorBoard's HPARAMS shows these)."""
    hydra = HydraConfig.get()
    sources = {
        name: str(value)[2:-1].removeprefix("hydra:runtime.choices.")
        for name, value in OmegaConf.to_container(cfg.hparams, resolve=False).items()
        if isinstance(value, str) and value.startswith("${")
    }
    values = dict(OmegaConf.to_container(cfg.hparams, resolve=True))
    overridden = override_keys(overrides)
    for key in sorted(overridden - set(sources.values())):
        value = (
            None
            if is_location(key)
            else hydra.runtime.choices.get(key) or OmegaConf.select(cfg, key.replace("/", "."), default=None)
        )
        if value is not None:  # a location says where things are, not what was trained
            values[key] = value
    swept = sweep_keys(hydra.sweep.dir, hydra.sweeper.get("params")) if hydra.mode == RunMode.MULTIRUN else set()
    varying = {name for name in values if sources.get(name, name) in (swept or overridden)}
    typed = {
        name: value
        if isinstance(value, (bool, int, float, str))
        else str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
        for name, value in values.items()
    }
    return typed, varying


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
