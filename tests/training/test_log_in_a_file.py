"""A run redirected to a file (``> run.log``, nohup, a cluster job, CI): no progress bar, so no carriage return, and
one plain line per epoch in its place (training/callbacks.py EpochLog)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import pytest
from lightning.pytorch.callbacks import RichProgressBar

from fer_lightning.core.console import aligned_table, on_terminal
from fer_lightning.training.callbacks import ShortProgressBar, epoch_line
from tests.conftest import TINY_CLI, TRAIN_COMMAND


def test_a_run_redirected_to_a_file_writes_no_carriage_return_and_one_line_per_epoch(tmp_path: Path) -> None:
    command = [
        *TRAIN_COMMAND,
        *TINY_CLI,
        "data.batch_size=16",
        "trainer.max_epochs=2",  # the bar is left at its default: off, because stdout is a file
        f"paths.root={tmp_path / 'outputs'}",
    ]
    log = tmp_path / "run.log"
    with log.open("wb") as file:
        done = subprocess.run(command, cwd=tmp_path, stdout=file, stderr=subprocess.STDOUT, timeout=300)
    text = log.read_bytes().decode()
    assert done.returncode == 0, text[-3000:]
    assert "\r" not in text
    lines = re.findall(
        r"Epoch (\d)/2 {2}train loss [\d.]+ acc [\d.]+% {2}val loss [\d.]+ acc [\d.]+% {2}lr \S+ .*s$", text, re.M
    )
    assert lines == ["1", "2"]
    # The model summary as plain log lines, whole: Lightning's rich table is cut at 80 columns in a file.
    assert "Total Flops" in text and "ScratchCNN" in text and "…" not in text and "┃" not in text


def test_the_epoch_line_names_the_backbone_rate_only_where_it_has_its_own() -> None:
    metrics = {"train/loss": 1.5, "train/acc": 0.25, "val/loss": 1.25, "val/acc": 0.5, "train/lr": 1e-3}
    line = epoch_line(2, 30, metrics, 12.34)
    assert line == "Epoch 3/30  train loss 1.5000 acc 25.00%  val loss 1.2500 acc 50.00%  lr 1.00e-03  12.3s"
    line = epoch_line(0, 30, {**metrics, "train/lr_backbone": 1e-4}, 1.0)
    assert "  lr 1.00e-03 backbone 1.00e-04  " in line


def test_bars_are_off_when_the_output_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not on_terminal()


def test_the_summary_table_aligns_names_and_values() -> None:
    assert aligned_table({"accuracy": 0.5, "images": 56}).splitlines() == [
        "  accuracy      0.5000",
        "  images            56",
    ]


def test_the_bar_counts_epochs_from_one_and_shows_only_the_accuracies_in_short_names_in_percent() -> None:
    bar = ShortProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=2)  # what _get_train_description reads
    assert bar._get_train_description(1) == "Epoch 2/2"
    metrics = {"v_num": 3, "train/acc": 0.25, "val/acc": 0.5, "val/acc_best": 0.5, "val/f1": 0.4}
    with patch.object(RichProgressBar, "get_metrics", return_value=metrics):
        assert bar.get_metrics(None, None) == {"acc": "25.0%", "val": "50.0%", "best": "50.0%"}
