"""Ctrl-C or SIGTERM (a cluster's time limit, `kill`) saves the run where it stands, so it can resume."""

from __future__ import annotations

from pathlib import Path

import lightning as L
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
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and trainer.state.fn == "fit":
            path = self.dirpath / "last.ckpt"
            trainer.save_checkpoint(path)
            rank_zero_info(f"Interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}: saved {path}; "
                           "resume with ckpt_path=last (or this path) and the same overrides")
