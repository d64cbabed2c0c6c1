"""Learning-rate schedules built for a parameter-group optimizer: each group (head at ``model.lr``, backbone at
``model.lr * model.backbone_lr_ratio``) follows the same shape at its own lr, so the ratio holds all run long."""

from __future__ import annotations

import logging
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR

log = logging.getLogger(__name__)


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.03, final_ratio: float = 0.0
) -> LambdaLR:
    """Linear warm-up from 0 over ``warmup_fraction`` of the run, then a cosine down to ``final_ratio`` of each lr.

    Stepped per batch (``model.scheduler_interval: step``), so batch-size sweeps share one shape.
    """
    warmup = max(1, round(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def one_cycle(optimizer: Optimizer, total_steps: int, pct_start: float = 0.25, **options: Any) -> OneCycleLR:
    """torch's OneCycleLR with each group peaking at its own lr. One scalar ``max_lr`` would set every group to the
    same peak: the backbone of a transfer model would train at the head's lr, whatever ``backbone_lr_ratio`` says.

    A rebuilt schedule (a resume over a new horizon) takes the peaks the first one stored in the groups (``max_lr``),
    not the lr the run has reached. ``options``: OneCycleLR's other arguments (div_factor, anneal_strategy ...).
    """
    peaks = [group.get("max_lr", group["lr"]) for group in optimizer.param_groups]
    return OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps, pct_start=pct_start, **options)


def check_horizon(trainer: DictConfig, model: DictConfig) -> None:
    """A schedule that runs over the run's length needs one, before anything is fitted: with
    ``trainer.max_epochs=-1`` (no limit) an epoch schedule over ``trainer.max_epochs`` (CosineAnnealingLR's T_max=-1)
    would swing the lr between its peak and 0 every epoch, and a per-step one would be told an infinite number of
    steps. A per-step schedule takes its length from ``trainer.max_steps`` when that is given (logged); a time budget
    (``trainer.max_time``) gives no length. Schedules without a horizon (plateau) need none."""
    scheduler = model.get("scheduler")
    epochs = trainer.get("max_epochs")
    if scheduler is None or (isinstance(epochs, int) and epochs > 0):
        return
    steps = trainer.get("max_steps") or -1
    target = OmegaConf.select(scheduler, "_target_", default="?")
    if model.get("scheduler_interval") == "step":
        if steps > 0:
            log.info("The lr schedule %s runs over trainer.max_steps=%d (trainer.max_epochs=%s)", target, steps, epochs)
            return
        raise ValueError(
            f"trainer.max_epochs={epochs} (no limit): the lr schedule {target} runs over the run's steps and needs a "
            "length: give trainer.max_epochs=<n>, or +trainer.max_steps=<n> (trainer.max_time gives it none)"
        )
    if "trainer.max_epochs" in str(OmegaConf.to_container(scheduler, resolve=False)):
        raise ValueError(
            f"trainer.max_epochs={epochs} (no limit): the lr schedule {target} runs over trainer.max_epochs; give "
            "trainer.max_epochs=<n>, or a schedule without a horizon (model/scheduler=plateau), or a per-step one "
            "(model/scheduler=warmup_cosine or one_cycle) with +trainer.max_steps=<n> (trainer.max_time gives none)"
        )
