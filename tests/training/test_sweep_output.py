"""What a sweep prints: the data tables and the model summary once (job 0), and its leaderboard table at the end."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import TINY_CLI, TRAIN_COMMAND


def test_a_sweep_prints_each_table_once_and_ends_with_its_leaderboard(tmp_path: Path) -> None:
    command = [
        *TRAIN_COMMAND,
        "-m",
        "model.lr=1e-3,3e-3",
        *TINY_CLI,
        "data.batch_size=16",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("Images per class and split") == 1
    assert out.count("Cleaning listed") == 1
    assert out.count("Total params") == 1  # the model summary
    assert out.count("Epoch 1/1") == 2  # each job's line (the output is not a terminal)
    table = out.rstrip().splitlines()[-3:]  # the leaderboard: its header, then one row per job, best first
    assert table[0].split()[:4] == ["best", "job", "status", "overrides"]
    assert table[1].split()[0] == "*" and all("completed" in line for line in table[1:])
    assert (tmp_path / "leaderboard.md").is_file()
