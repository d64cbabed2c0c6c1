"""The sweep leaderboard shows what tells jobs apart, readably, on fake sweep folders laid out as training writes
them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fer_lightning.core.overrides import folder_name
from fer_lightning.training.leaderboard import readable_number, short_keys, write_leaderboard

SHARED = {"model": "cnn", "dropout": 0.5, "optimizer": "torch.optim.AdamW", "max_epochs": 2}


def fake_job(sweep: Path, num: int, overrides: list[str], hparams: dict, metrics: dict | None, error: str = "") -> None:
    """<sweep>/<num>_<swept values>/.hydra/{overrides,config,hydra}.yaml and metrics.json as fer_lightning.train
    writes them."""
    job = sweep / folder_name(num, overrides, ["model.lr", "model.weight_decay"])
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    config = {
        "model": {"lr": hparams["lr"], "weight_decay": hparams["weight_decay"]},
        "hparams": {
            **hparams,
            "lr": "${model.lr}",
            "weight_decay": "${model.weight_decay}",
            "model": "${hydra:runtime.choices.model}",
        },
    }
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": {"model": "cnn"}}}}))
    if metrics is None:
        saved = {"status": "failed", "error": error, "traceback": "Traceback ..."}
    else:
        saved = {
            "status": "completed",
            "best_checkpoint": str(job / "checkpoints" / "best.ckpt"),
            "hparams": hparams,
            "metrics": metrics,
            "epochs": 2,
            "fit_seconds": 61.7,
            "seconds_per_epoch": 30.85,
            "minutes_to_val_acc_0.6": 0.9 if metrics["val/acc_best"] >= 0.6 else None,
        }
    (job / "metrics.json").write_text(json.dumps(saved))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    common = ["data=synthetic", "data.num_workers=0"]
    runs = [(1e-3, 2.05e-05, 0.6643, 0.65), (3e-4, 2.05e-05, 0.6712, 0.66), (1e-3, 1e-4, 0.612, 0.60)]
    for num, (lr, wd, val, test) in enumerate(runs):
        metrics = {
            "val/acc_best": val,
            "val/f1_best": val - 0.05,
            "test/acc": test,
            "test/f1": test - 0.04,
            "train/loss": 1.0,
        }
        fake_job(
            tmp_path,
            num,
            [*common, f"model.lr={lr}", f"model.weight_decay={wd}"],  # train.py adds the overrides
            {**SHARED, "lr": lr, "weight_decay": wd, "data": "synthetic", "model.lr": lr},
            metrics,
        )
    fake_job(
        tmp_path,
        3,
        [*common, "model.lr=-1", "model.weight_decay=1e-4"],
        {**SHARED, "lr": -1.0, "weight_decay": 1e-4},
        None,
        "ValueError: Invalid learning rate: -1.0",
    )
    return tmp_path


def test_markdown_shows_only_what_differs_readably_and_the_csv_keeps_everything(sweep: Path) -> None:
    write_leaderboard(sweep)
    text = (sweep / "leaderboard.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|:")]
    columns, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    rows = [dict(zip(columns, row, strict=True)) for row in rows]
    assert columns[:4] == ["best", "job", "status", "overrides"]
    assert {"val/acc_best %", "test/acc %", "epochs", "s/epoch", "error"} <= set(columns)  # one unit: percent
    assert not {"lr", "weight_decay"} & set(columns)  # the knobs the overrides set: said once, in that column
    assert not {"dropout", "optimizer", "max_epochs", "model"} & set(columns)  # the same in every job: said once
    assert not {"model.lr", "data"} & set(columns) and "data=synthetic," not in text  # overrides: in their own column
    assert (
        "Same in every job:" in text
        and "dropout=0.5" in text
        and "Overrides of every job: `data=synthetic data.num_workers=0`" in text
    )
    assert [row["job"] for row in rows] == ["1", "0", "2", "3"] and rows[0]["best"] == "*"
    assert rows[0]["val/acc_best %"] == "67.1"
    assert rows[0]["s/epoch"] == "30.9" and rows[0]["epochs"] == "2" and "0.0000" not in text
    assert rows[0]["min to 60%"] == "0.9"  # callbacks.TimeToAccuracy's minutes
    assert rows[0]["overrides"] == "lr=0.0003 weight_decay=2.05e-05"  # shortened, the shared ones left out
    failed = rows[-1]  # its knobs (in the csv) come from its saved config
    assert failed["status"] == "failed" and "lr=-1" in failed["overrides"] and "learning rate" in failed["error"]

    board = pd.read_csv(sweep / "leaderboard.csv")
    assert list(board["job"]) == [1, 0, 2, 3] and list(board["best"].fillna("")) == ["*", "", "", ""]
    assert board.loc[0, "val/acc_best"] == 0.6712 and board.loc[0, "weight_decay"] == 2.05e-05  # full precision
    assert board.loc[0, "overrides"].startswith("data=synthetic") and "dropout" in board  # every column, in full
    assert board.loc[3, "status"] == "failed" and board.loc[3, "lr"] == -1


def test_a_job_without_metrics_json_is_failed_and_a_folder_without_jobs_is_refused(
    sweep: Path, tmp_path_factory
) -> None:
    (sweep / "2_lr-0.001_weight_decay-0.0001" / "metrics.json").unlink()
    board = write_leaderboard(sweep).set_index("job")
    assert board.loc[2, "status"] == "failed" and "died" in board.loc[2, "error"]
    with pytest.raises(FileNotFoundError, match="not a sweep folder"):
        write_leaderboard(tmp_path_factory.mktemp("empty"))


@pytest.mark.parametrize(
    "value, text",
    [
        (2.05e-05, "2.05e-05"),
        (0.66431, "0.664"),
        (1e-3, "0.001"),
        (3e-4, "0.0003"),
        (30.85, "30.9"),
        (1234.5, "1234"),
        (64, "64"),
        (12.0, "12"),
        (float("nan"), ""),
        (None, ""),
        ("cnn", "cnn"),
        (True, "True"),
    ],
)
def test_numbers_are_readable(value: object, text: str) -> None:
    assert readable_number(value) == text


def test_override_keys_are_shortened_without_ambiguity() -> None:
    keys = ["model.lr", "data.batch_size", "model.scheduler.patience", "callbacks.early_stopping.patience", "model"]
    assert short_keys(keys) == {
        "model.lr": "lr",
        "data.batch_size": "batch_size",
        "model": "model",
        "model.scheduler.patience": "scheduler.patience",
        "callbacks.early_stopping.patience": "early_stopping.patience",
    }


def test_a_damaged_metrics_json_is_that_jobs_row_and_names_the_file(
    sweep: Path, caplog: pytest.LogCaptureFixture
) -> None:
    [damaged] = [job for job in sweep.iterdir() if job.name.startswith("1_")]
    (damaged / "metrics.json").write_text('{"status": "completed", "metr')  # cut short (a full disk)
    (damaged / ".hydra" / "overrides.yaml").write_text("- [unclosed\n")
    with caplog.at_level("WARNING"):
        table = write_leaderboard(sweep).set_index("job")
    assert len(table) == 4 and list(table.loc[[0, 2], "status"]) == ["completed", "completed"]  # the others stand
    assert table.loc[1, "status"] == "failed" and f"unreadable {damaged / 'metrics.json'}" in table.loc[1, "error"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert str(damaged / "metrics.json") in warned and str(damaged / ".hydra" / "overrides.yaml") in warned


def test_only_fractions_turn_to_percent(sweep: Path) -> None:
    """A metric ranked by that is not among the usual columns is read from each job; a loss keeps its unit."""
    write_leaderboard(sweep, rank_by="train/loss")
    lines = [line for line in (sweep / "leaderboard.md").read_text().splitlines() if line.startswith("|")]
    columns, _, first = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[:3])
    assert "train/loss" in columns and "train/loss %" not in columns and "val/acc_best %" in columns
    assert (
        first[columns.index("train/loss")] == "1" and first[columns.index("val/acc_best %")] == "66.4"
    )  # job 0: ties kept in order
