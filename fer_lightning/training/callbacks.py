"""The Lightning callbacks of a training run: conf/callbacks/ holds one file per callback, each file's ``_target_``
points here or into Lightning; the run itself adds the ones it always needs (StoreConfig, GatherPredictions,
RunReports, RunRecord ...): everything a run writes besides its checkpoints is written by one of these."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_summary import summarize
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from fer_lightning.core.checkpoints import CONFIG_KEY
from fer_lightning.core.classes import NUM_CLASSES
from fer_lightning.core.files import write_json
from fer_lightning.core.lightning_private import (
    OneBasedEpochBar,
    end_resumed_epoch,
    set_scheduler_step,
    validate_again_in_full,
)
from fer_lightning.core.units import shown
from fer_lightning.evaluation.predictions import ReportSettings, split_predictions
from fer_lightning.evaluation.reports import write_split_report
from fer_lightning.training import dashboards

log = logging.getLogger(__name__)


class StoreConfig(L.Callback):
    """Adds the run's resolved config (plain dicts and lists: safe for weights_only loading) to every checkpoint."""

    def __init__(self, cfg: DictConfig) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config


class LastCheckpoint(ModelCheckpoint):
    """checkpoints/last.ckpt for resuming: after every epoch, or with ``every_minutes`` at the first epoch end that
    many minutes after the previous write (a GPU epoch of seconds would otherwise spend its time writing), and always
    after the last epoch, however training ends (max_epochs, max_time, early stopping). Interrupts write it too
    (CheckpointOnInterrupt)."""

    def __init__(self, every_minutes: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.every_minutes = every_minutes
        self.written_at = -math.inf
        self.this_epoch = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        final = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        waited = time.monotonic() - self.written_at >= 60 * self.every_minutes
        self.this_epoch = self.every_minutes <= 0 or final or waited

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.this_epoch:
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.this_epoch:
            super().on_train_epoch_end(trainer, pl_module)
            self.written_at = time.monotonic()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last = Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}"
        if not self.this_epoch:  # stopped early by time or by EarlyStopping after an epoch that was not written
            trainer.save_checkpoint(last)
        best = next((c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor and c.best_model_path), "")
        if trainer.is_global_zero and best:
            share_one_file(Path(best), last)


def share_one_file(best: Path, last: Path) -> None:
    """When the last epoch was the best one, the best checkpoint becomes a second name (a hard link) of last.ckpt: the
    two hold the same weights and optimizer state, and a short run (one epoch; or one whose schedule ends at its best)
    need not keep them twice. Writing either name later replaces its file whole (core/files.py), the other untouched."""
    if not (best.is_file() and last.is_file()) or best.samefile(last):
        return
    epoch = [torch.load(f, map_location="cpu", mmap=True, weights_only=True).get("epoch") for f in (best, last)]
    if epoch[0] is None or epoch[0] != epoch[1]:
        return
    linked = best.with_name(f".{best.name}.link")
    linked.unlink(missing_ok=True)
    os.link(last, linked)
    os.replace(linked, best)


class EpochLog(L.Callback):
    """One plain log line per epoch where there is no progress bar (a run redirected to a file, nohup, a cluster job):
    ``Epoch 3/30  train loss 1.234 acc 45.6%  val loss 1.345 acc 43.2%  lr 1e-03  12.3s``. On a terminal the
    bar shows all this and the callback stays silent (conf/trainer/default.yaml enable_progress_bar)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.pending: tuple[int, float] | None = None  # (epoch, seconds) of an epoch ended but not yet logged

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer)
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Callbacks run before the module's on_train_epoch_end, which logs the train metrics: the line is written
        # when they are in, at the next epoch's start or when training ends.
        self.pending = (trainer.current_epoch, time.perf_counter() - self.started)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer)

    def flush(self, trainer: L.Trainer) -> None:
        pending, self.pending = self.pending, None
        if pending is None or trainer.progress_bar_callback is not None or not trainer.is_global_zero:
            return
        log.info(epoch_line(pending[0], trainer.max_epochs, trainer.callback_metrics, pending[1]))


def epoch_line(epoch: int, max_epochs: int | None, metrics: dict[str, Any], seconds: float) -> str:
    """The line of epoch ``epoch`` (0-based): epoch/max, train and val loss and accuracy, the learning rate (and the
    backbone's where it has its own), the epoch's seconds."""

    def number(name: str) -> float | None:
        value = metrics.get(name)
        return None if value is None else float(value)

    parts = [f"Epoch {epoch + 1}/{max_epochs}" if max_epochs and max_epochs > 0 else f"Epoch {epoch + 1}"]
    for stage in ("train", "val"):
        loss, acc = number(f"{stage}/loss"), number(f"{stage}/acc")
        if loss is not None or acc is not None:
            text = stage
            text += f" loss {loss:.4f}" if loss is not None else ""
            text += f" acc {shown('acc', acc)}" if acc is not None else ""
            parts.append(text)
    rate, backbone = number("train/lr"), number("train/lr_backbone")
    if rate is not None:
        parts.append(f"lr {rate:.2e}" + (f" backbone {backbone:.2e}" if backbone is not None else ""))
    parts.append(f"{seconds:.1f}s")
    return "  ".join(parts)


class ShortProgressBar(OneBasedEpochBar):
    """Lightning's rich bar, with epochs counted from 1 (``Epoch 2/2`` on the last of two, not ``Epoch 1/1``) and
    only the accuracies, in short names and in percent as the log lines give them (``acc 41.2% val 38.0% best 40.1%``),
    so its last line fits in 100 columns."""

    SHORT = {"train/acc": "acc", "val/acc": "val", "val/acc_best": "best", "test/acc": "test"}

    def configure_columns(self, trainer: L.Trainer) -> list:
        columns = super().configure_columns(trainer)
        columns[1].bar_width = 12  # the bar itself: room for the counts, times and metrics on one line
        return columns

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float | dict]:
        metrics = super().get_metrics(trainer, pl_module)
        return {short: f"{float(metrics[name]):.1%}" for name, short in self.SHORT.items() if name in metrics}


class LoggedModelSummary(ModelSummary):
    """The model summary (layers, parameters, FLOPs) as lines of the run's log, the console's and train.log's alike,
    whole: Lightning's default draws a rich table cut at 80 columns in a file, into neither the run's log nor stdout
    (a ModelSummary subclass, so Lightning adds no other)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            log.info("Model summary:\n%s", summarize(pl_module, max_depth=1))


class FreezeBackbone(L.Callback):
    """Trains only the head before epoch ``unfreeze_at_epoch``, then the whole net.

    Lightning's BackboneFinetuning keeps frozen BatchNorm layers in train mode (normalising with batch
    statistics) and adds the backbone to the optimizer mid-run, out of reach of the LR scheduler. Here
    the backbone's parameters are in the optimizer from the start, in their own group at
    ``lr * model.backbone_lr_ratio`` and scheduled like the head; while frozen they get no gradient (so
    no update, no weight decay) and the whole backbone stays in eval mode, so its BatchNorm running
    statistics are not touched. ``unfreeze_at_epoch=0`` trains everything from the start.
    """

    def __init__(self, unfreeze_at_epoch: int) -> None:
        self.unfreeze_at_epoch = unfreeze_at_epoch

    def frozen(self, trainer: L.Trainer) -> bool:
        return trainer.current_epoch < self.unfreeze_at_epoch

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """One line that says what is frozen and at which rates the backbone trains."""
        ratio = pl_module.hparams.get("backbone_lr_ratio", 1.0)
        rate = "the head's learning rate" if ratio == 1 else f"{ratio:g} x the head's learning rate"
        if self.unfreeze_at_epoch > 0:
            rank_zero_info(
                f"Backbone frozen for the first {self.unfreeze_at_epoch} epoch(s) (head only), then trained at {rate}"
            )
        else:
            rank_zero_info(f"Backbone trained from the first epoch, at {rate}")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        frozen = self.frozen(trainer)
        pl_module.backbone.requires_grad_(not frozen)
        if not frozen:
            pl_module.backbone.train()  # it was kept in eval mode while frozen
        if trainer.current_epoch == self.unfreeze_at_epoch and trainer.current_epoch > 0:
            rank_zero_info(f"Epoch {trainer.current_epoch + 1}: unfreezing the backbone")

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        # Lightning puts the module back in train mode around validation; keep the frozen backbone in eval.
        if self.frozen(trainer):
            pl_module.backbone.eval()


class TimeToAccuracy(L.Callback):
    """Minutes of ``trainer.fit`` until ``monitor`` first reaches each threshold (e.g. 60% and 65% val accuracy),
    the speed measure that counts for a recipe: a faster epoch that needs more of them does not win.

    The clock covers fitting (training and validation) and goes on across a resume (it is in the checkpoint);
    the time between an interruption and the resume does not count. Read from metrics.json and the leaderboard.
    """

    def __init__(self, thresholds: list[float], monitor: str = "val/acc") -> None:
        self.thresholds, self.monitor = sorted(thresholds), monitor
        self.minutes: dict[str, float] = {}
        self.elapsed, self.started = 0.0, None  # seconds fitted before this process; perf_counter at fit start

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def fitted_seconds(self) -> float:
        return self.elapsed + (time.perf_counter() - self.started if self.started is not None else 0.0)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the module's epoch-end logging (callbacks' on_validation_epoch_end runs before it), as ModelCheckpoint.
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        for threshold in self.thresholds:
            if float(value) >= threshold and self.key(threshold) not in self.minutes:
                minutes = self.minutes[self.key(threshold)] = self.fitted_seconds() / 60
                rank_zero_info(
                    f"{self.monitor} reached {shown(self.monitor, threshold)} after {minutes:.1f} minutes of fitting "
                    f"(epoch {trainer.current_epoch + 1})"
                )

    def key(self, threshold: float) -> str:
        return f"minutes_to_{self.monitor.replace('/', '_')}_{threshold:g}"

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.fitted_seconds(), "minutes": dict(self.minutes)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed, self.minutes = state_dict["elapsed"], dict(state_dict["minutes"])


class CheckpointOnInterrupt(L.Callback):
    """Writes ``last.ckpt`` (model, optimizer, scheduler and loop state) when training is interrupted.

    Lightning turns SIGTERM into a SIGTERMException at the next batch and Ctrl-C into a
    KeyboardInterrupt; both reach ``on_exception`` before the loggers are closed. Other errors (a
    diverged loss, a bug) write nothing: the last checkpoint written before them stays the good one.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or trainer.state.fn != "fit":
            return
        if trainer.sanity_checking:
            rank_zero_info("Interrupted before the first training step: nothing to save")
            return
        if trainer.validating:
            validate_again_in_full(trainer)
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path, weights_only=False)  # the whole state: a resume goes on from it
        rank_zero_info(
            f"Interrupted at epoch {trainer.current_epoch + 1}, step {trainer.global_step}: saved {path}; "
            "resume with ckpt_path=last (or this path) and the same overrides (a requeued SLURM job does)"
        )


Predictions = tuple[Tensor, Tensor]  # (probabilities (N, 7), labels (N,)) in the dataset's order


class GatherPredictions(L.Callback):
    """The predictions the end-of-run report is made from, so the test split goes through the net once: those of the
    best val epoch (the one the val-monitoring ModelCheckpoint keeps) and those of the test loop, gathered from every
    process in the dataset's order. At each new best val epoch its confusion matrix goes to TensorBoard."""

    def __init__(self) -> None:
        self.batches: dict[str, list[Predictions]] = {"val": [], "test": []}
        self.best_val: Predictions | None = None  # None: no val epoch of this process was the best (a resumed run)
        self.test: Predictions | None = None
        self.best_before = -math.inf

    def keep(self, stage: str, logits: Tensor, batch: tuple[Tensor, Tensor]) -> None:
        self.batches[stage].append((logits.float().softmax(-1).cpu(), batch[1].cpu()))

    def gathered(self, trainer: L.Trainer, stage: str) -> Predictions:
        """This epoch's ``stage`` batches from every process, in the dataset's order (DistributedSampler deals
        sample i to rank i % world_size and pads the tail)."""
        parts = self.batches[stage]
        probabilities = torch.cat([p for p, _ in parts]) if parts else torch.empty(0, NUM_CLASSES)
        labels = torch.cat([y for _, y in parts]) if parts else torch.empty(0, dtype=torch.long)
        if trainer.world_size > 1:
            shards = [None] * trainer.world_size
            torch.distributed.all_gather_object(shards, (probabilities, labels))
            count = len(trainer.datamodule.splits[stage]) if trainer.datamodule else None
            probabilities = torch.stack([p for row in zip(*(s[0] for s in shards), strict=True) for p in row])[:count]
            labels = torch.stack([y for row in zip(*(s[1] for s in shards), strict=True) for y in row])[:count]
        return probabilities, labels

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.batches["val"].clear()
        self.best_before = pl_module.best_val_accuracy  # before this epoch's; restored on resume

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Tensor,
        batch: tuple[Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """``outputs``: validation_step's (or test_step's) logits."""
        self.keep("test" if trainer.testing else "val", outputs, batch)

    on_test_batch_end = on_validation_batch_end

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the module's epoch-end logging (callbacks' on_validation_epoch_end runs before it), as ModelCheckpoint.
        accuracy = trainer.callback_metrics.get("val/acc")
        if trainer.sanity_checking or accuracy is None or float(accuracy) <= self.best_before:
            return
        self.best_val = self.gathered(trainer, "val")  # every process takes part in the gather
        if trainer.is_global_zero:
            dashboards.log_confusion_matrix(trainer.loggers, "val", self.best_val, trainer.current_epoch + 1)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.batches["test"].clear()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.test = self.gathered(trainer, "test")


def run_metric_name(split: str, name: str) -> str:
    """A report's metric under the run's name for it, as Lightning names the same numbers: ``test/<metric>`` (test is
    the best checkpoint's), ``val/<metric>_best`` (the val report is of the best epoch, like ``val/acc_best``)."""
    return f"{split}/{name}_best" if split == "val" else f"{split}/{name}"


class RunReports(L.Callback):
    """The end-of-run report of the best weights (evaluation/reports.py, the same pipeline as eval's), from the
    predictions GatherPredictions kept, so no split goes through the net again: ``report/test`` (files, and TensorBoard
    under ``test/`` at the last epoch's step with the misclassified faces, Grad-CAM and PR curves) and ``report/val``
    (the best val epoch's, files only). A ``limit_test_batches`` run reports on the faces it tested."""

    def __init__(self, gather: GatherPredictions, settings: ReportSettings, out_dir: str | Path) -> None:
        self.gather, self.settings, self.out = gather, settings, Path(out_dir)
        self.metrics: dict[str, float] = {}  # the reports' numbers under the run's names (run_metric_name)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # After the test loop, outside its inference mode (Grad-CAM needs gradients); the loggers are still open.
        if stage != "test" or not trainer.is_global_zero:  # the predictions were gathered into the main process
            return
        writer = next(iter(dashboards.tensorboard_writers(trainer.loggers)), None)
        for split, collected in (("test", self.gather.test), ("val", self.gather.best_val)):
            if collected is None:  # no val epoch was the best in this process (e.g. resumed after the best one)
                continue
            probabilities, labels = (t.numpy() for t in collected)
            test = split == "test"
            report = write_split_report(
                split_predictions(trainer.datamodule, split, probabilities, labels, with_faces=test),
                self.out / split,
                self.settings,
                run_name=str(self.out.parent),
                writer=writer if test else None,
                step=trainer.current_epoch,  # the last epoch's, where Lightning logged test's numbers
                net=pl_module.net,
                transform=trainer.datamodule.transforms["val"],
            )
            self.metrics.update(
                {run_metric_name(split, name): value for name, value in report.items() if name != "images"}
            )


class RunRecord(L.Callback):
    """What a run leaves besides its checkpoints and reports: the Custom Scalars layout at a fresh run's start, and
    once it is over (``finish``) metrics.json (status, best checkpoint, knobs, final metrics, epochs, fit time), the
    HPARAMS entry beside the curves and the closing lines of the log."""

    def __init__(
        self, run_dir: str | Path, hparams: dashboards.HparamsEntry, reports: RunReports, config_yaml: str, logdir: str
    ) -> None:
        self.run_dir, self.hparams, self.reports, self.logdir = Path(run_dir), hparams, reports, logdir
        self.config_yaml = config_yaml
        self.fitted: dict[str, float] = {}
        self.tested: dict[str, float] = {}
        self.started = self.fit_seconds = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        if trainer.is_global_zero:
            if trainer.ckpt_path is None:  # a resumed run's layout is there already
                dashboards.log_layout(trainer.loggers)
            dashboards.log_config(trainer.loggers, self.config_yaml, trainer.current_epoch)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds = time.perf_counter() - self.started
        self.fitted = {name: float(value) for name, value in trainer.callback_metrics.items()}

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.tested = {name: float(value) for name, value in trainer.callback_metrics.items()}

    def finish(self, trainer: L.Trainer) -> dict[str, float]:
        """The run's final metrics, written down (on the main process); Lightning's numbers (synchronised over every
        process: the ones TensorBoard shows) win over the report's where both have one (test/acc, val/acc_best)."""
        metrics = {**self.fitted, **self.tested}
        metrics.update({name: value for name, value in self.reports.metrics.items() if name not in metrics})
        if not trainer.is_global_zero:
            return metrics
        epochs = trainer.current_epoch
        best = best_checkpoint(trainer)
        dashboards.log_hparams(trainer.loggers, self.hparams, metrics, epochs)
        reached = next((c.minutes for c in trainer.callbacks if isinstance(c, TimeToAccuracy)), {})
        record = {
            "status": "completed",
            "best_checkpoint": best,
            "hparams": self.hparams.values,
            "metrics": metrics,
            "epochs": epochs,
            "fit_seconds": self.fit_seconds,
            "seconds_per_epoch": self.fit_seconds / max(epochs, 1),
            **reached,
        }
        write_json(record, self.run_dir / "metrics.json")
        log.info("\n%s", run_summary(metrics, best, self.run_dir, self.logdir))
        return metrics


def best_checkpoint(trainer: L.Trainer) -> str:
    """The val-monitoring ModelCheckpoint's best file, "" without one (last_checkpoint is a ModelCheckpoint too)."""
    return next((c.best_model_path for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None)), "")


def run_summary(metrics: dict[str, float], best: str, run_dir: Path, logdir: str) -> str:
    """The few lines a run ends with: the test numbers, where the best checkpoint and the run are, how to look."""
    lines = []
    if "test/acc" in metrics:
        lines.append(
            f"Test accuracy {shown('test/acc', metrics['test/acc'])}, "
            f"macro F1 {shown('test/f1', metrics.get('test/f1', math.nan))} "
            f"(best val accuracy {shown('val/acc_best', metrics.get('val/acc_best', math.nan))})"
        )
    elif "val/acc_best" in metrics:
        lines.append(f"Best val accuracy {shown('val/acc_best', metrics['val/acc_best'])} (no test)")
    lines += [
        f"Best checkpoint: {best or 'none'}",
        f"Run folder: {run_dir}",
        f"TensorBoard: tensorboard --logdir {logdir}",
    ]
    return "\n".join(lines)


class ScheduleOverNewHorizon(L.Callback):
    """A resumed run follows its schedule over the current horizon from the step it stopped at.

    A checkpoint restores the scheduler with the horizon it was saved with (CosineAnnealingLR's T_max,
    a per-step schedule's total steps), so raising trainer.max_epochs on resume would run the extra epochs
    at the old end's lr of about 0, or past the end. The schedule is rebuilt for the new horizon (the module's
    ``build_scheduler``) and set to where the run was.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is None or getattr(pl_module, "scheduler_builder", None) is None:
            return
        for config in trainer.lr_scheduler_configs:
            restored = config.scheduler
            if isinstance(restored, torch.optim.lr_scheduler.ReduceLROnPlateau):
                continue  # no horizon: it reacts to val metrics
            fresh = pl_module.build_scheduler(restored.optimizer)
            set_scheduler_step(fresh, restored.last_epoch)
            config.scheduler = fresh


class ValidateResumedEpoch(L.Callback):
    """A run resumed from a checkpoint saved mid-epoch (Ctrl-C, SIGTERM) whose epoch is already over under the resumed
    run's length (``trainer.limit_train_batches`` at or below the batches it had trained) ends that epoch at once,
    with its validation.

    Lightning reads such a checkpoint's progress (every batch started was completed, and the epoch's last one reached)
    as one saved after the epoch's validation, and skips it: EarlyStopping then stops the run with "conditioned on
    metric val/acc which is not available", and the epoch would have no val numbers. Marking the validation as
    interrupted inside its first batch (``validate_again_in_full``) gets it run in full, with no training batch first.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trained = end_resumed_epoch(trainer)
        if trained is not None:
            rank_zero_info(
                f"Resumed at batch {trained} of epoch {trainer.current_epoch + 1}, which has "
                f"{trainer.num_training_batches} batches in this run: the epoch ends here with its validation"
            )
