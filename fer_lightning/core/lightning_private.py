"""Every private API of Lightning (and the two of torch's LR schedulers) the project leans on, in one place, each with
why the public one does not do. Written against lightning 2.6 (pyproject pins it to 2.6.x): on an upgrade, this module
and tests/training/test_reliability.py, test_faults.py and test_log_in_a_file.py are what to check first."""

from __future__ import annotations

import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loops import _EvaluationLoop  # private: the type of trainer.fit_loop.epoch_loop.val_loop


def restarted_mid_epoch(trainer: L.Trainer) -> bool:
    """Whether this fit resumed from a checkpoint saved inside an epoch (an interrupt's last.ckpt, a requeued SLURM
    job). ``_FitLoop.restarted_mid_epoch``: the loops are private; Lightning has no public flag for it."""
    return bool(trainer.fit_loop.restarted_mid_epoch)


def validate_again_in_full(trainer: L.Trainer) -> None:
    """Make a validation interrupted midway run again from its first batch after resuming.

    Left alone, Lightning either skips it on resume (EarlyStopping then stops with "val/acc is not available") or
    continues at the batch it stopped at, with the metric states of the batches before it lost. The loop's progress
    counters (``batch_progress``, private) are set to "interrupted inside the first batch", so it re-runs in full.
    """
    val_loop: _EvaluationLoop = trainer.fit_loop.epoch_loop.val_loop
    progress = val_loop.batch_progress
    progress.current.reset()
    done = progress.total.completed
    progress.total.ready = progress.total.started = done + 1
    progress.total.processed = done


def end_resumed_epoch(trainer: L.Trainer) -> int | None:
    """A fit resumed mid-epoch whose epoch is already over under this run's length (``limit_train_batches`` at or
    below the batches it had trained): mark the epoch's training done and its validation due, so the epoch ends at
    once with its validation; return the batches it had trained (None: nothing to do).

    Lightning reads such a checkpoint's progress (every batch started was completed, and the epoch's last one reached)
    as one saved after the epoch's validation, and skips it. Reads and sets the fit loop's private progress counters,
    ``restarted_on_last``, ``_should_check_val_epoch()`` and ``update_restart_stage()``."""
    fit_loop = trainer.fit_loop
    epoch_loop, val_loop = fit_loop.epoch_loop, fit_loop.epoch_loop.val_loop
    if (
        trainer.ckpt_path is None
        or not fit_loop.restarted_mid_epoch
        or not epoch_loop.restarted_on_last  # Lightning would go on training, then validate
        or not epoch_loop._should_check_val_epoch()
        or val_loop.batch_progress.total.completed  # this epoch's validation ran (or began) before the save
        or epoch_loop.batch_progress.current.ready < trainer.num_training_batches
    ):
        return None
    current = epoch_loop.batch_progress.current
    trained = current.ready
    # Past the end (fewer batches now than were trained): at the end, or Lightning would train one more batch.
    current.ready = current.started = current.processed = current.completed = int(trainer.num_training_batches)
    validate_again_in_full(trainer)
    val_loop.update_restart_stage()
    return int(trained)


class OneBasedEpochBar(RichProgressBar):
    """Lightning's rich bar with epochs counted from 1 (``Epoch 2/2`` on the last of two, not ``Epoch 1/1``), as the
    log lines, TensorBoard's steps and the figures count them. ``_get_train_description`` is the bar's private hook
    for that text; the public ``get_metrics`` cannot change it."""

    def _get_train_description(self, current_epoch: int) -> str:
        total = self.trainer.max_epochs
        return f"Epoch {current_epoch + 1}" + (f"/{total}" if total is not None and total > 0 else "")


def set_scheduler_step(scheduler: torch.optim.lr_scheduler.LRScheduler, last_epoch: int) -> None:
    """Put a freshly built scheduler at ``last_epoch`` and its optimizer's groups at the learning rates of that step.
    torch has no public "jump to step n": a scheduler's closed form (``_get_closed_form_lr``, private;
    CosineAnnealingLR's own ``get_lr`` is recursive) gives the rates, and ``_last_lr`` (what ``get_last_lr()`` and
    Lightning's LR logging read) is set to them."""
    scheduler.last_epoch = last_epoch
    closed_form = getattr(scheduler, "_get_closed_form_lr", scheduler.get_lr)
    with warnings.catch_warnings():  # torch warns when get_lr runs outside step(); here it is meant to
        warnings.filterwarnings("ignore", "To get the last learning rate computed by the scheduler")
        rates = closed_form()
    for group, value in zip(scheduler.optimizer.param_groups, rates, strict=True):
        group["lr"] = value
    scheduler._last_lr = list(rates)


def compile_or_run_eagerly(net: torch.nn.Module) -> None:
    """``net.compile()``, falling back to eager execution where compiling fails (no C++ compiler, an unsupported op):
    dynamo then warns instead of raising. ``torch._dynamo.config.suppress_errors`` is the only switch for that."""
    torch._dynamo.config.suppress_errors = True
    net.compile()
