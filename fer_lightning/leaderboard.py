"""python -m fer_lightning.leaderboard sweep_dir=<multirun folder>: one table for a sweep, every job's
overrides, knobs, best val and test metrics, time, or its error (also written when a multirun ends)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import yaml
from omegaconf import DictConfig

from fer_lightning.config import CONFIG_DIR

from fer_lightning.files import write_atomically, write_csv

log = logging.getLogger(__name__)
METRICS = ["val/acc_best", "best/val_macro_f1", "test/acc", "best/test_accuracy", "best/test_macro_f1"]


def job_row(job: Path) -> dict[str, Any]:
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    row: dict[str, Any] = {"job": job.name, "overrides": " ".join(overrides)}
    result = job / "metrics.json"
    if not result.is_file():
        return {**row, "status": "failed", "error": "no metrics.json: the job died before it finished"}
    saved = json.loads(result.read_text())
    if saved.get("status") == "failed":
        return {**row, "status": "failed", "error": saved.get("error", "")}
    metrics = saved.get("metrics", {})
    return {
        **row, "status": "completed", **saved.get("hparams", {}), **{m: metrics.get(m) for m in METRICS},
        "epochs": saved.get("epochs"), "seconds_per_epoch": round(saved.get("seconds_per_epoch", float("nan")), 1),
        "error": "",
    }


def leaderboard(sweep_dir: str | Path, rank_by: str = "val/acc_best") -> pd.DataFrame:
    """Rows sorted best first by ``rank_by`` (higher is better), failed jobs last; the best marked."""
    sweep_dir = Path(sweep_dir)
    jobs = sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: (len(p.name), p.name))
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir} holds no Hydra job folders (<n>/.hydra/): not a sweep folder")
    table = pd.DataFrame([job_row(job) for job in jobs])
    if rank_by not in table:
        table[rank_by] = float("nan")
    table = table.sort_values([rank_by], ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "best", "")
    if table[rank_by].notna().any():
        table.loc[table[rank_by].idxmax(), "best"] = "*"
    return table


def write_leaderboard(sweep_dir: str | Path, rank_by: str = "val/acc_best") -> pd.DataFrame:
    sweep_dir = Path(sweep_dir)
    table = leaderboard(sweep_dir, rank_by)
    write_csv(table, sweep_dir / "leaderboard.csv")
    markdown = f"# Sweep {sweep_dir}\n\nRanked by {rank_by} (chosen on val); * marks the best job.\n\n"
    markdown += table.to_markdown(index=False, floatfmt=".4f") + "\n"
    write_atomically(sweep_dir / "leaderboard.md", lambda tmp: tmp.write_text(markdown))
    log.info("Leaderboard of %d jobs (%d failed): %s", len(table), (table["status"] == "failed").sum(), sweep_dir / "leaderboard.md")
    return table


def rank(cfg: DictConfig) -> pd.DataFrame:
    """Write and print the leaderboard of ``cfg.sweep_dir``."""
    table = write_leaderboard(cfg.sweep_dir, cfg.rank_by)
    print(table.drop(columns=["error"]).to_string(index=False))
    return table


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="leaderboard")
def main(cfg: DictConfig) -> None:
    rank(cfg)


if __name__ == "__main__":
    main()
