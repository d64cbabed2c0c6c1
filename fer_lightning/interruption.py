"""Ctrl-C or SIGTERM (a cluster's time limit, `kill`) saves the run where it stands, so it can resume."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loops import _EvaluationLoop
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


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
                       "resume with ckpt_path=last (or this path) and the same overrides")


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
