"""The benchmark command runs its sections end to end on a tiny CSV (a smoke test: the numbers are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import random_faces, write_csv

SECTION_LINES = {
    "load": ("load  cold", "load  warm", "load  split + clean"),
    "matmul": ("matmul peak: bfloat16",),
    "data": ("data  raw", "data  augmented"),
    "train": ("train cpu",),
    "startup": ("startup cold cache", "startup warm cache"),
    "paths": ("paths ", "cnn "),
    "profile": ("profile scratch_cnn", "profile   waiting for data", "profile   forward", "profile   an epoch"),
}


def run_bench(tmp_path: Path, sections: list[str], *overrides: str) -> list[str]:
    images, labels = random_faces(140)
    csv = write_csv(
        tmp_path / "fer2013.csv", images, labels, ["Training"] * 100 + ["PublicTest"] * 20 + ["PrivateTest"] * 20
    )
    command = [
        sys.executable,
        "-m",
        "fer_lightning.bench",
        f"data.root={csv}",
        "models=[cnn]",
        "steps=3",
        "warmup_steps=1",
        "repeats=1",
        "data_batches=2",
        "batch_size=8",
        "matmul_size=256",
        f"sections=[{','.join(sections)}]",
        f"hydra.run.dir={tmp_path / 'run'}",
        *overrides,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    for expected in (*(line for s in sections for line in SECTION_LINES[s]), "bench took"):
        assert any(line.startswith(expected) for line in lines), f"no line starts with {expected!r}:\n{out.stdout}"
    return lines


def test_bench_prints_every_section_but_startup(tmp_path: Path) -> None:
    # The released recipe: its schedule is stepped per batch, which the plain loop runs without (no Trainer).
    lines = run_bench(tmp_path, ["load", "matmul", "data", "train"], 'train_overrides=["experiment=scratch_best"]')
    cnn = next(line for line in lines if line.startswith("cnn "))
    project, plain, ratio, gflop_per_image = (float(v) for v in cnn.split()[1:5])
    assert project > 0 and plain > 0 and ratio > 0 and gflop_per_image > 0
    chosen = next(line for line in lines if line.startswith("precision "))
    assert re.search(r"the machine's fastest: (bf16-mixed|32-true) \(the CPU has .+\)", chosen), chosen
    targets = [line for line in lines if line.startswith("target ")]
    assert len(targets) == 2 and all(re.search(r"\d+\.\d\d  (met|MISSED)$", line) for line in targets), "\n".join(lines)


@pytest.mark.slow  # two fresh training processes, cold and warm: about 40 s
def test_bench_startup_section(tmp_path: Path) -> None:
    lines = run_bench(tmp_path, ["startup"])
    assert any(line.startswith("target warm start") for line in lines), "\n".join(lines)


def test_bench_measures_both_data_paths_and_profiles_a_step(tmp_path: Path) -> None:
    lines = run_bench(tmp_path, ["paths", "profile"], "data.augment=true")
    cnn = next(line for line in lines if line.startswith("cnn "))
    workers, device, plain, device_over_plain, device_over_workers = (float(v) for v in cnn.split()[1:6])
    assert min(workers, device, plain) > 0
    rounding = 0.5 / min(workers, device, plain) * 2 + 0.01  # the rates are printed as whole faces/s
    assert device_over_plain == pytest.approx(device / plain, rel=rounding)
    assert device_over_workers == pytest.approx(device / workers, rel=rounding)
    paths = [line for line in lines if line.startswith("profile scratch_cnn")]
    assert len(paths) == 2 and "worker(s)" in paths[0] and ", device," in paths[1], "\n".join(lines)
    shares = [
        float(line.rsplit(None, 1)[1].rstrip("%")) for line in lines if line.startswith("profile   ") and "ms" in line
    ]
    assert (
        len(shares) == 8 and abs(sum(shares[:4]) - 100) < 0.5 and abs(sum(shares[4:]) - 100) < 0.5
    )  # the parts add up
