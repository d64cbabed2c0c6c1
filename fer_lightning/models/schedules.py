"""Learning-rate schedules torch has no single class for."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05, final_ratio: float = 0.0) -> LambdaLR:
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
