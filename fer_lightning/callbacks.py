"""Every callback the configs name: Lightning callbacks for a run, and Hydra's for the end of a sweep.

conf/callbacks/ holds one file per callback; each file's ``_target_`` points here or into Lightning.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.experimental.callback import Callback as HydraCallback
from lightning.pytorch.loops import _EvaluationLoop
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from fer_lightning.checkpoints import CONFIG_KEY
from fer_lightning.leaderboard import write_leaderboard


class StoreConfig(L.Callback):
    """Adds the run's resolved config (plain dicts and lists: safe for weights_only loading) to every checkpoint."""

    def __init__(self, cfg: DictConfig) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config


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

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        frozen = self.frozen(trainer)
        pl_module.backbone.requires_grad_(not frozen)
        if not frozen:
            pl_module.backbone.train()  # it was kept in eval mode while frozen
        if trainer.current_epoch == self.unfreeze_at_epoch and trainer.current_epoch > 0:
            rank_zero_info(f"Epoch {trainer.current_epoch}: unfreezing the backbone")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int) -> None:
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
                self.minutes[self.key(threshold)] = self.fitted_seconds() / 60
                rank_zero_info(f"{self.monitor} reached {threshold:g} after {self.minutes[self.key(threshold)]:.1f} "
                               f"minutes of fitting (epoch {trainer.current_epoch})")

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
            validate_again_in_full(trainer.fit_loop.epoch_loop.val_loop)
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path)
        rank_zero_info(f"Interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}: saved {path}; "
                       "resume with ckpt_path=last (or this path) and the same overrides (a requeued SLURM job does)")


def validate_again_in_full(val_loop: _EvaluationLoop) -> None:
    """Make a validation interrupted midway run again from its first batch after resuming.

    Left alone, Lightning either skips it on resume (EarlyStopping then stops with "val/acc is not
    available") or continues at the batch it stopped at, with the metric states of the batches before it
    lost. Marking the progress as "interrupted inside the first batch" gets it re-run in full.
    """
    progress = val_loop.batch_progress
    progress.current.reset()
    done = progress.total.completed
    progress.total.ready = progress.total.started = done + 1
    progress.total.processed = done


class WriteLeaderboard(HydraCallback):
    """Hydra callback (conf/hydra/default.yaml): the sweep's leaderboard is written when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        table = write_leaderboard(config.hydra.sweep.dir, config.get("optimized_metric", "val/acc_best"))
        if (table["status"] == "failed").all():  # the exit status says so, for scripts and schedulers (Hydra only
            # warns about a callback's exceptions; SystemExit gets through)
            raise SystemExit(f"every job of the sweep failed: {config.hydra.sweep.dir}/leaderboard.md has the errors")
