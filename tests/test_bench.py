"""The benchmark command runs every section end to end (a smoke test: its numbers are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import SMALL_CNN


def test_bench_prints_every_section(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fer_lightning.bench", "data=synthetic", "data.synthetic.train=10",
               "models=[cnn]", "steps=3", "warmup_steps=1", "repeats=1", "data_batches=2", "batch_size=8",
               "matmul_size=256", f"hydra.run.dir={tmp_path}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300, cwd=tmp_path).stdout
    for expected in ("matmul peak: bfloat16", "data  raw", "data  augmented", "of the bf16 matmul peak",
                     "augmented pipeline / scratch CNN training rate", "startup cold cache", "startup warm cache"):
        assert expected in out, out
    cnn = next(line for line in out.splitlines() if line.startswith("cnn "))
    project, plain, ratio = (float(v) for v in cnn.split()[1:4])
    assert project > 0 and plain > 0 and ratio > 0
