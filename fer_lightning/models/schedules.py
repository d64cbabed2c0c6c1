"""Learning-rate schedules built for a parameter-group optimizer: each group (head at ``model.lr``, backbone at
``model.lr * model.backbone_lr_ratio``) follows the same shape at its own lr, so the ratio holds all run long."""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05, final_ratio: float = 0.0
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
