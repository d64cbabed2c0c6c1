"""A sweep's leaderboard: one table of its jobs (every job's overrides, knobs, best val and test metrics, time, or its
error), written as leaderboard.csv and .md when a multirun ends (the Hydra callback WriteLeaderboard, which
conf/hydra/train.yaml installs) and by ``python -m fer_lightning.leaderboard sweep_dir=...`` (tools/leaderboard.py).

leaderboard.csv holds every column at full precision, for scripts (its columns do not depend on what the sweep
varied); leaderboard.md and the printed table show what tells the jobs apart: the knobs and overrides that
differ between jobs, the metrics (in percent, as the run's own log lines give them), epochs and time, numbers to a few
significant digits, and what every job shared once above the table."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.files import write_csv, write_text
from fer_lightning.core.overrides import job_number, parse_override, short_value
from fer_lightning.core.units import in_percent

log = logging.getLogger(__name__)
# One name per number, as Lightning, TensorBoard and metrics.json name it (training/callbacks.py run_metric_name).
METRICS = ["val/acc_best", "val/f1_best", "test/acc", "test/f1"]
RUN_COLUMNS = ["epochs", "seconds_per_epoch"]
FIXED = ["best", "job", "folder", "status", "overrides", "error", *METRICS, *RUN_COLUMNS]  # never taken for a knob
TIME_TO = "minutes_to_"  # callbacks.TimeToAccuracy's columns: minutes of fitting until a val accuracy was reached


def job_order(folder: str) -> tuple[bool, int, str]:
    """Sweep jobs by number (2 before 10), other folders after them by name."""
    number = job_number(folder)
    return (isinstance(number, str), number if isinstance(number, int) else 0, folder)


def job_row(job: Path, rank_by: str = METRICS[0]) -> dict[str, Any]:
    """One job's row: its knobs, ``METRICS`` and ``rank_by`` from its metrics.json, or why it failed."""
    overrides = job_overrides(job)
    row: dict[str, Any] = {"job": job_number(job.name), "folder": job.name, "overrides": " ".join(overrides)}
    result = job / "metrics.json"
    if not result.is_file():
        return {
            **row,
            "status": "failed",
            **configured_hparams(job),
            "error": "no metrics.json: the job died before it finished",
        }
    try:
        saved = json.loads(result.read_text())
        if not isinstance(saved, dict):
            raise ValueError(f"holds a {type(saved).__name__}, expected an object")
    except (OSError, ValueError) as error:  # a damaged file (a full disk, a hand edit): this job's row says so
        log.warning("%s is unreadable (%s): its job is listed as failed", result, error)
        return {**row, "status": "failed", **configured_hparams(job), "error": f"unreadable {result}: {error}"}
    if saved.get("status") == "failed":
        return {**row, "status": "failed", **configured_hparams(job), "error": saved.get("error", "")}
    metrics = saved.get("metrics", {})
    return {
        **row,
        "status": "completed",
        **saved.get("hparams", {}),
        **{m: metrics.get(m) for m in dict.fromkeys([*METRICS, rank_by])},
        "epochs": saved.get("epochs"),
        "seconds_per_epoch": saved.get("seconds_per_epoch", math.nan),
        "error": "",
        **{k: v for k, v in saved.items() if k.startswith(TIME_TO)},
    }


def job_overrides(job: Path) -> list[str]:
    """The job's overrides as Hydra saved them; none (with a warning naming the file) when that file is damaged."""
    file = job / ".hydra" / "overrides.yaml"
    try:
        overrides = yaml.safe_load(file.read_text()) or []
    except (OSError, ValueError, yaml.YAMLError) as error:
        log.warning("%s is unreadable (%s): its job's overrides are not shown", file, error)
        return []
    if not isinstance(overrides, list):
        log.warning("%s holds a %s, expected a list: its job's overrides are not shown", file, type(overrides).__name__)
        return []
    return [str(o) for o in overrides]


def configured_hparams(job: Path) -> dict[str, Any]:
    """A failed job wrote no hparams: resolve its ``hparams`` from the config Hydra saved, so the table still shows
    which values it ran with (e.g. the lr that failed). ``${hydra:...}`` is looked up in the saved hydra.yaml.
    Empty when that config cannot be resolved."""
    saved = job / ".hydra"
    try:
        text = (saved / "config.yaml").read_text().replace("${hydra:", "${hydra.")
        cfg = OmegaConf.merge(OmegaConf.create(text), OmegaConf.load(saved / "hydra.yaml"))
        hparams = OmegaConf.to_container(cfg.hparams, resolve=True) if "hparams" in cfg else {}
    except Exception as error:  # any unresolvable value: the overrides column still says what the job was
        log.debug("No hparams for %s: %s", job, error)
        return {}
    return {k: v for k, v in hparams.items() if k not in FIXED and not isinstance(v, (dict, list))}


def leaderboard(sweep_dir: str | Path, rank_by: str = "val/acc_best") -> pd.DataFrame:
    """Every column, full precision; rows sorted best first by ``rank_by`` (higher is better), failed jobs last;
    the best marked."""
    sweep_dir = Path(sweep_dir)
    jobs = sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: job_order(p.name))
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir} holds no Hydra job folders (<n>/.hydra/): not a sweep folder")
    table = pd.DataFrame([job_row(job, rank_by) for job in jobs])
    repeated = sorted({str(n) for n in table["job"] if (table["job"] == n).sum() > 1})
    if repeated:
        log.warning(
            "%s holds several jobs numbered %s: an earlier sweep wrote there too", sweep_dir, ", ".join(repeated)
        )
    for column in (rank_by, *RUN_COLUMNS):  # absent when every job failed
        if column not in table:
            table[column] = float("nan")
    table = table.sort_values([rank_by], ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "best", "")
    if table[rank_by].notna().any():
        table.loc[table[rank_by].idxmax(), "best"] = "*"
    return table


def readable_number(value: Any, digits: int = 3) -> str:
    """``digits`` significant digits in the shortest form (2.05e-05, 0.664, 0.001); whole numbers as integers
    (12, 1024); missing as blank."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if math.isnan(value):
        return ""
    if float(value).is_integer() and abs(value) < 10**15:
        return str(int(value))
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each override key by its shortest dotted suffix that no other key of the sweep ends with:
    model.lr -> lr, but model.scheduler.patience and callbacks.early_stopping.patience stay apart."""
    short = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        short[key] = suffix
    return short


def varying_overrides(overrides: list[list[str]]) -> tuple[list[str], list[str]]:
    """Per job, the overrides that not every job shares, keys shortened; and the ones every job shares, in full."""
    shared = [o for o in overrides[0] if all(o in job for job in overrides[1:])] if overrides else []
    short = short_keys(sorted({parse_override(o).key for job in overrides for o in job}))
    rows = []
    for job in overrides:
        parts = (parse_override(o) for o in job if o not in shared)
        rows.append(
            " ".join(
                str(part._replace(key=short[part.key], value=part.value and short_value(part.value))) for part in parts
            )
        )
    return rows, shared


def readable(
    table: pd.DataFrame, overrides: list[list[str]], rank_by: str = "val/acc_best", digits: int = 3
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The view of ``leaderboard``'s table (``overrides``: each row's job overrides, as Hydra saved them): the knobs
    whose values differ between jobs, the metrics (those any job has, and ``rank_by``), epochs, seconds per epoch,
    the differing overrides shortened, errors if a job failed; every cell a readable string. Also what every job
    shared: knob -> value, and 'overrides' -> the overrides common to all jobs."""
    overridden = {parse_override(o).key for job in overrides for o in job}  # shown in the overrides column already
    # By the short name too: model.lr is the knob lr, model/optimizer the knob optimizer.
    overridden |= {short.split("/")[-1] for short in short_keys(sorted(overridden)).values()}
    timing = sorted(c for c in table.columns if c.startswith(TIME_TO))
    knobs = [c for c in table.columns if c not in FIXED and c not in timing and c != rank_by and c not in overridden]
    varying = [c for c in knobs if table[c].dropna().astype(str).nunique() > 1]
    shared = {
        c: readable_number(table[c].dropna().iloc[0], digits)
        for c in knobs
        if c not in varying and table[c].notna().any()
    }
    metrics = [m for m in dict.fromkeys([rank_by, *METRICS]) if m in table and (m == rank_by or table[m].notna().any())]
    view = table[["best", "job", "status", *varying, *metrics, *RUN_COLUMNS, *timing]].copy()
    percent = [m for m in metrics if in_percent(m) and pd.api.types.is_numeric_dtype(view[m])]
    for metric in percent:  # as the runs' own log lines give them; the CSV keeps fractions
        view[metric] = view[metric] * 100
    view = view.rename(
        columns={
            "seconds_per_epoch": "s/epoch",
            **{m: f"{m} %" for m in percent},
            **{c: f"min to {float(c.rsplit('_', 1)[-1]):.0%}" for c in timing},
        }
    )
    view.insert(3, "overrides", "")
    view["overrides"], shared_overrides = varying_overrides(overrides)
    if (table["status"] == "failed").any():
        view["error"] = [" ".join(str(e).split()) for e in table["error"].fillna("")]
    for column in view.columns:
        view[column] = [readable_number(v, digits) for v in view[column].astype(object)]
    if shared_overrides:
        shared["overrides"] = " ".join(shared_overrides)
    return view, shared


def sweep_view(
    sweep_dir: Path, table: pd.DataFrame, rank_by: str, digits: int = 3
) -> tuple[pd.DataFrame, dict[str, str]]:
    """``readable`` of a sweep folder's table."""
    return readable(table, [job_overrides(sweep_dir / folder) for folder in table["folder"]], rank_by, digits)


def markdown(sweep_dir: Path, table: pd.DataFrame, rank_by: str, digits: int = 3) -> str:
    view, shared = sweep_view(sweep_dir, table, rank_by, digits)
    failed = int((table["status"] == "failed").sum())
    text = (
        f"# Sweep {sweep_dir}\n\n{len(table)} jobs ({failed} failed), ranked by {rank_by} (chosen on val); "
        "* marks the best job.\n\n"
    )
    if "overrides" in shared:
        text += f"Overrides of every job: `{shared.pop('overrides')}`\n\n"
    if shared:
        text += "Same in every job: " + ", ".join(f"{k}={v}" for k, v in shared.items()) + "\n\n"
    view = view.map(lambda cell: cell.replace("|", "\\|"))
    align = [
        "right" if column != "job" and all(is_number(cell) for cell in view[column] if cell) else "left"
        for column in view
    ]
    return text + view.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_leaderboard(sweep_dir: str | Path, rank_by: str = "val/acc_best", digits: int = 3) -> pd.DataFrame:
    """leaderboard.csv (every column, full precision) and leaderboard.md (the readable view); returns the full table."""
    sweep_dir = Path(sweep_dir)
    table = leaderboard(sweep_dir, rank_by)
    write_csv(table, sweep_dir / "leaderboard.csv")
    text = markdown(sweep_dir, table, rank_by, digits)
    write_text(text, sweep_dir / "leaderboard.md")
    log.info(
        "Leaderboard of %d jobs (%d failed): %s",
        len(table),
        (table["status"] == "failed").sum(),
        sweep_dir / "leaderboard.md",
    )
    return table


def printed_table(sweep_dir: Path, table: pd.DataFrame, rank_by: str, digits: int = 3) -> str:
    """The leaderboard as a terminal shows it: what every job shared, then the readable view."""
    view, shared = sweep_view(sweep_dir, table, rank_by, digits)
    lines = []
    if "overrides" in shared:
        lines.append(f"overrides of every job: {shared.pop('overrides')}")
    if shared:
        lines.append("same in every job: " + ", ".join(f"{name}={value}" for name, value in shared.items()))
    lines.append(view.to_string(index=False))
    return "\n".join(lines)


class WriteLeaderboard(HydraCallback):
    """Hydra callback (conf/hydra/train.yaml): the sweep's leaderboard is written when a training multirun ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's config in ``<sweep dir>/multirun.yaml`` before its first job, whatever the sweeper (Hydra's
        basic one writes the same file; Optuna's none): each job names its folder by the keys it sweeps."""
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        rank_by = config.get("optimized_metric", "val/acc_best")
        table = write_leaderboard(config.hydra.sweep.dir, rank_by)
        print(printed_table(Path(config.hydra.sweep.dir), table, rank_by), flush=True)  # the sweep ends with its table
        if (table["status"] == "failed").all():  # the exit status says so, for scripts and schedulers (Hydra only
            # warns about a callback's exceptions; SystemExit gets through)
            raise SystemExit(f"every job of the sweep failed: {config.hydra.sweep.dir}/leaderboard.md has the errors")
