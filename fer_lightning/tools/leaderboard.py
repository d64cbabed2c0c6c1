"""python -m fer_lightning.leaderboard sweep_dir=<multirun folder>: a sweep's leaderboard written again and printed
(training/leaderboard.py makes it; a multirun writes it when it ends)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from fer_lightning.training.leaderboard import printed_table, write_leaderboard


def rank(cfg: DictConfig) -> pd.DataFrame:
    """Write and print the leaderboard of ``cfg.sweep_dir``."""
    table = write_leaderboard(cfg.sweep_dir, cfg.rank_by, cfg.digits)
    print(printed_table(Path(cfg.sweep_dir), table, cfg.rank_by, cfg.digits))
    return table
