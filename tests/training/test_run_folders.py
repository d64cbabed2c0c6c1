"""A run folder belongs to its run: a second live run into it and a refused resume change nothing in it, and a
resume that Hydra cannot place (no such run) is one line, exit status 2."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_lightning.core.runs import LOCK_NAME
from tests.conftest import FAST, SMALL_CNN

RUN = [*FAST, *SMALL_CNN]  # a few seconds of training on synthetic faces


def train_command(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fer_lightning.train", f"paths.root={tmp_path / 'outputs'}", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def cnn_run(tmp_path: Path, trained_checkpoint: Path) -> Path:
    """A scratch CNN's run folder as train leaves it: .hydra/, checkpoints/last.ckpt, a log."""
    run = tmp_path / "outputs" / "train" / "runs" / "cnn"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(trained_checkpoint, run / "checkpoints" / "last.ckpt")
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"model": {"net": {"_target_": "fer_lightning.models.cnn.scratch_cnn"}}})
    )
    (run / ".hydra" / "overrides.yaml").write_text("- model.net.channels=[8,16]\n")
    (run / "train.log").write_text("trained\n")
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(out: subprocess.CompletedProcess) -> str:
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert "Traceback" not in text and "exception formatting" not in text, text
    lines = [line for line in text.splitlines() if "[ERROR]" in line]
    assert len(lines) == 1, text
    return lines[0]


def test_a_refused_resume_changes_nothing_in_the_run_it_refused(tmp_path: Path, trained_checkpoint: Path) -> None:
    run = cnn_run(tmp_path, trained_checkpoint)
    before = snapshot(run)
    line = one_error_line(train_command(tmp_path, "model=vgg16", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    assert "holds a fer_lightning.models.cnn.scratch_cnn model" in line and "vgg16" in line
    assert snapshot(run) == before  # byte for byte, and no file added


def test_ckpt_path_last_with_no_run_of_that_net_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(train_command(tmp_path, "model=vgg16", "ckpt_path=last"))
    assert "ckpt_path=last: no training run of a fer_lightning.models.transfer.vgg16 model" in line


def test_a_second_run_into_a_live_run_folder_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "outputs" / "train" / "runs" / "live"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("the live run's config\n")
    (run / "train.log").write_text("the live run's log\n")
    with (run / LOCK_NAME).open("a+") as held:  # the live run's lock, as own_run_folder holds it
        held.write("4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = snapshot(run)
        out = train_command(tmp_path, "data=synthetic", f"hydra.run.dir={run}")
        after = snapshot(run)
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text, text
    refused = [line for line in text.splitlines() if "is in use by another run" in line]
    assert len(refused) == 1 and f"run folder {run}" in refused[0] and "pid 4242" in refused[0], text
    assert after == before


def test_resuming_with_other_net_sizes_names_the_first_mismatch_and_adds_no_files(
    tmp_path: Path, trained_checkpoint: Path
) -> None:
    run = cnn_run(tmp_path, trained_checkpoint)
    net = {  # as Hydra saved the trained run's model.net (SMALL_CNN's sizes)
        "_target_": "fer_lightning.models.cnn.scratch_cnn",
        "_partial_": True,
        "image_size": "${if_null:${data.crop_size},${data.image_size}}",
        "channels": [8, 16],
        "convs_per_block": 2,
        "block_dropout": 0.25,
        "dense": [32],
        "dense_norm": True,
        "pool": "flatten",
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"net": net}}))
    before = snapshot(run)
    out = train_command(
        tmp_path,
        "data=synthetic",
        "model.net.channels=[8,32]",
        "model.net.dense=[32]",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
    )
    line = one_error_line(out)
    assert f"ckpt_path={run / 'checkpoints' / 'last.ckpt'} does not fit this run's model" in line
    assert "is [16, 8, 3, 3] in the checkpoint but [32, 8, 3, 3] here" in line, line
    assert snapshot(run) == before


def test_a_read_only_checkpoints_folder_is_the_projects_own_one_line_error(tmp_path: Path) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(checkpoints)]).returncode:
        pytest.skip("cannot mount a read-only folder here (needs root)")
    try:
        out = train_command(tmp_path, *RUN, f"hydra.run.dir={tmp_path / 'run'}")
    finally:
        subprocess.run(["umount", str(checkpoints)], check=True)
    line = one_error_line(out)
    assert "could not write checkpoint epoch000" in line and f"in {checkpoints}" in line
    assert "Read-only file system" in line


def test_a_fresh_run_into_a_finished_run_folder_is_refused_and_changes_nothing(
    tmp_path: Path, trained_checkpoint: Path
) -> None:
    run = cnn_run(tmp_path, trained_checkpoint)
    before = snapshot(run)
    line = one_error_line(train_command(tmp_path, *RUN, f"hydra.run.dir={run}"))  # no ckpt_path: not a resume
    assert f"run folder {run} holds an earlier run" in line and "ckpt_path=" in line, line
    assert snapshot(run) == before  # its config, checkpoint and log as they were; no lock file added either


def sweep_command(tmp_path: Path, sweep: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fer_lightning.train", "-m", "model.lr=1e-3,3e-4", *RUN, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_second_sweep_into_a_live_sweeps_folder_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "0_lr=0.001").mkdir(parents=True)  # the live sweep's first job, still running: no .hydra/ yet
    (sweep / "multirun.yaml").write_text("the live sweep's config\n")
    with (sweep / ".sweep.lock").open("a+") as held:  # the live sweep's lock, as OwnSweepFolder holds it
        held.write("4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = snapshot(sweep)
        out = sweep_command(tmp_path, sweep)
        after = snapshot(sweep)
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text, text
    refused = [line for line in text.splitlines() if "[ERROR]" in line]
    assert len(refused) == 1 and f"sweep folder {sweep} is in use by another sweep (pid 4242)" in refused[0], text
    assert after == before and sorted(p.name for p in sweep.iterdir()) == [".sweep.lock", "0_lr=0.001", "multirun.yaml"]


def test_a_sweep_into_a_folder_with_an_earlier_sweeps_jobs_is_refused(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "0_lr=0.01" / ".hydra").mkdir(parents=True)  # an earlier sweep's job (its lock is long gone)
    before = snapshot(sweep)
    out = sweep_command(tmp_path, sweep)
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text, text
    refused = [line for line in text.splitlines() if "[ERROR]" in line]
    assert len(refused) == 1 and f"sweep folder {sweep} holds the jobs of an earlier sweep (0_lr=0.01)" in refused[0]
    assert snapshot(sweep) == before and not (sweep / "leaderboard.md").exists()


def test_the_paths_a_run_prints_paste_back_unquoted_into_eval_and_curves(tmp_path: Path) -> None:
    """A user copies the best checkpoint and the run folder from the run's last lines into the next command, as they
    are: a folder named by overrides holds no = or , (Hydra's override grammar would stop there)."""
    trained = train_command(tmp_path, "model.lr=0.002", *RUN, "trainer.max_epochs=2", "data.batch_size=8")
    assert trained.returncode == 0, trained.stderr[-3000:]
    printed = trained.stdout + trained.stderr
    best = printed.split("Best checkpoint: ")[1].split()[0]
    run = printed.split("Run folder: ")[1].split()[0]
    assert "lr-0.002" in run and not set("=,") & set(run), run
    for command in (
        ["fer_lightning.eval", f"ckpt_path={best}", "report.saliency_per_class=0"],
        ["fer_lightning.curves", f"runs=[{run},{run}]", "labels=[a,b]"],
    ):
        pasted = subprocess.run(
            [sys.executable, "-m", *command, f"paths.root={tmp_path / 'outputs'}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert pasted.returncode == 0, (command, pasted.stderr[-3000:])
