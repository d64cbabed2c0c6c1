"""Faults and bigger machines in training: seeded runs, process-group signals, resuming to extend, bad checkpoint
files, missing splits, bad values, several devices. Each test fails on the behaviour it names being broken."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from fer_lightning.core.checkpoints import AtomicCheckpointIO
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.training.run import train
from tests.conftest import ON_FILES, SMALL_CNN, SMALL_RUN, event_scalars, final_run, random_faces, write_folders


@pytest.mark.parametrize("workers", [0, 2])
def test_seeded_runs_with_augmentation_give_identical_metrics(make_cfg, workers: int) -> None:
    overrides = [
        *SMALL_RUN,
        "data.augment=true",
        f"data.num_workers={workers}",
        "data.on_device=false",  # the worker path (workers=0: albumentations in this process)
        "trainer.max_epochs=2",
        "trainer.deterministic=true",
        "seed=7",
        "test=false",
    ]
    first, second = (train(make_cfg(*overrides)) for _ in range(2))
    assert first["train/loss"] == second["train/loss"] and first["val/acc"] == second["val/acc"]


# A training command of a few minutes, run as a user runs it: in its own process (group).
TRAIN_COMMAND = [
    sys.executable, "-m", "fer_lightning.train", "data=synthetic", "data.synthetic.train=300", "data.batch_size=8",
    "data.augment=true", *SMALL_CNN, "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "test=false",
]  # fmt: skip


def start_training(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    """A training run in its own process group (as SLURM and `timeout` see it), with two DataLoader workers."""
    args = [*TRAIN_COMMAND, "data.on_device=false", "data.num_workers=2", "trainer.max_epochs=50", *overrides]
    return subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for_first_epoch(tmp_path: Path) -> None:
    deadline = time.monotonic() + 600  # about a minute on an idle machine; much longer beside a training run
    while not list(tmp_path.glob("outputs/train/runs/*/checkpoints/last.ckpt")):
        assert time.monotonic() < deadline, "the first epoch did not end in 10 minutes"
        time.sleep(0.3)
    time.sleep(1.5)  # into the next epoch, workers busy


def test_sigterm_to_the_process_group_saves_last_and_exits_non_zero(tmp_path: Path) -> None:
    process = start_training(tmp_path)
    wait_for_first_epoch(tmp_path)
    os.killpg(process.pid, signal.SIGTERM)  # main process and workers alike
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "killed by signal" not in output and "weights_only" not in output, output[-3000:]  # no library chatter
    [last] = tmp_path.glob("outputs/train/runs/*/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=True)["epoch"] >= 1


def test_a_resume_after_sigkill_draws_each_step_once(tmp_path: Path) -> None:
    process = start_training(tmp_path)
    wait_for_first_epoch(tmp_path)
    os.killpg(process.pid, signal.SIGKILL)  # no chance to save: the last epoch's checkpoint is what there is
    process.communicate(timeout=60)
    [run] = tmp_path.glob("outputs/train/runs/*")
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    time.sleep(1.0)  # event files sort by their second
    resumed = subprocess.run(
        [*TRAIN_COMMAND, "data.num_workers=0", f"trainer.max_epochs={saved['epoch'] + 2}", "ckpt_path=last"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = event_scalars(run)
    for tag in ("train/lr", "val/acc", "train/loss"):
        steps = [e.step for e in events.Scalars(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    assert len(events.Scalars("val/acc")) == saved["epoch"] + 2


def test_resuming_with_more_epochs_continues_the_schedule_over_the_new_horizon(make_cfg, tmp_path: Path) -> None:
    lr = 1e-2
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", f"model.lr={lr}", "test=false"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    time.sleep(1.0)
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=4", f"model.lr={lr}", "test=false", f"ckpt_path={last}"))
    lrs = [e.value for e in event_scalars(tmp_path / "run").Scalars("train/lr")]
    # Cosine over 2 epochs ends at 0; resumed to 4, epoch 2 runs at the 4-epoch cosine's value there, lr/2.
    assert lrs[:2] == pytest.approx([lr, lr / 2])
    assert lrs[2:] == pytest.approx([lr * (1 + np.cos(np.pi * e / 4)) / 2 for e in (2, 3)])
    # The HPARAMS row is the resumed run's, written anew (TensorBoard keeps a run's first), and the numbers go on.
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.*.hparams"))) == 1
    final, start = final_run(tmp_path / "run")
    assert start.hparams["max_epochs"].string_value == "4"
    assert [e.step for e in final.Scalars("val/acc_best")] == [1, 2, 3, 4]


def test_the_trainer_writes_checkpoints_atomically(make_cfg) -> None:
    trainer = instantiate(make_cfg().trainer, logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_a_bad_checkpoint_file_is_named_in_one_line(make_cfg, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"ckpt_path={bad} is not a readable checkpoint") as error:
        train(make_cfg(*SMALL_RUN, f"ckpt_path={bad}"))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=f"ckpt_path={bad} is not a readable checkpoint"):
        LoadedCheckpoint.load(bad)


@pytest.mark.parametrize("layout", ["folders", "csv"])
def test_data_without_a_test_split_trains_and_skips_the_test(make_cfg, tmp_path: Path, layout: str, caplog) -> None:
    images, labels = random_faces(80, seed=4)
    if layout == "folders":
        root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 80)  # train/ only
    else:
        root = tmp_path / "train.csv"  # Kaggle's train.csv: emotion,pixels, no Usage
        root.write_text(
            "emotion,pixels\n"
            + "".join(f"{y},{' '.join(map(str, im.ravel()))}\n" for im, y in zip(images, labels, strict=True))
        )
    caplog.set_level("INFO", logger="fer_lightning")
    metrics = train(make_cfg(*SMALL_CNN, f"data.root={root}", *ON_FILES, "data.val_fraction=0.25", fast=False))
    assert "Test skipped" in caplog.text
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["status"] == "completed" and "val/acc" in saved["metrics"] and "test/acc" not in metrics


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.lr=abc", "model.lr='abc': expected a number"),
        ("model.lr=-0.1", r"model.lr=-0.1: expected a value in \(0, inf\)"),
        ("model.dropout=1.5", r"model.dropout=1.5: expected a value in \[0, 1\)"),
        ("data.batch_size=0", r"data.batch_size=0: expected a value in \[1, inf\)"),
        ("data.batch_size=1.5", "data.batch_size=1.5: expected an integer"),
    ],
)
def test_bad_values_are_named_before_any_work(make_cfg, override: str, message: str) -> None:
    with pytest.raises(InstantiationException, match=message) as error:  # Hydra's wrapper around the constructor's
        train(make_cfg(*SMALL_RUN, override))
    assert isinstance(error.value.__cause__, ValueError)


def test_a_sweep_on_several_devices_is_refused_and_an_all_failed_sweep_fails(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "-m",
        "trainer=gpu",
        "trainer.devices=2",
        "model.lr=1e-3,3e-4",
        "data=synthetic",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "trainer.devices=2 inside a sweep (-m)" in result.stderr
    command = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "-m",
        "model.lr=-1,-2",
        "data=synthetic",
        "data.num_workers=0",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "every job of the sweep failed" in result.stderr


@pytest.mark.slow  # two processes of ResNet50 on CPU: about a minute here
def test_transfer_learning_under_ddp_runs_through_the_unfreeze_epoch(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "model=resnet50",
        "model.pretrained=false",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "callbacks.freeze_backbone.unfreeze_at_epoch=1",
        "trainer.max_epochs=2",
        "data=synthetic",
        "data.synthetic.train=8",
        "data.synthetic.val=4",
        "data.synthetic.test=4",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.enable_progress_bar=false",
        "hydra.run.dir=run",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2
    assert "Images per class" not in (tmp_path / "run" / "train_ddp_process_1.log").read_text()
