"""Faults and bigger machines: augmentation seeding, process-group signals, full disks, resuming to extend,
missing splits, bad values, several processes. Each test fails on the behaviour it names being broken."""

from __future__ import annotations

import errno
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
from hydra.utils import instantiate
from torchvision import models

from fer_lightning.core.checkpoints import AtomicCheckpointIO, CheckpointWriteError
from fer_lightning.core.runs import find_checkpoint, run_dir
from fer_lightning.data.readers import FaceRecords, read_csv
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.predict import predict
from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN
from tests.fixtures import random_faces, write_csv, write_folders
from tests.training.test_train import event_scalars

SMALL_RUN = [*SMALL_CNN, "data.synthetic.train=20", "data.batch_size=16", "trainer.log_every_n_steps=1"]
ON_FILES = ["data.cache_dir=null", "data.num_workers=0", "data.batch_size=16", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # conftest's FAST, on data.root


def test_each_dataloader_worker_augments_differently(make_cfg) -> None:
    cfg = make_cfg("data.augment=true", "data.num_workers=2", "data.batch_size=1")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    face = datamodule.splits["train"].images[0]
    n = 8  # the same face eight times: any difference between batches is augmentation
    datamodule.splits["train"] = FaceRecords(np.stack([face] * n), np.zeros(n, np.int64), np.full(n, "Training"),
                                             np.array([str(i) for i in range(n)]))
    batches = [images for images, _ in datamodule.train_dataloader()]
    # Worker 0 makes batches 0, 2, ...; worker 1 makes 1, 3, ...: forked with one shared generator they would
    # replay the same stream, so batch 2i would equal batch 2i + 1.
    assert not all(torch.equal(batches[i], batches[i + 1]) for i in range(0, n, 2))


@pytest.mark.parametrize("workers", [0, 2])
def test_seeded_runs_with_augmentation_give_identical_metrics(make_cfg, workers: int) -> None:
    overrides = [*SMALL_RUN, "data.augment=true", f"data.num_workers={workers}", "trainer.max_epochs=2",
                 "trainer.deterministic=true", "seed=7", "test=false"]
    first, second = (train(make_cfg(*overrides)) for _ in range(2))
    assert first["train/loss"] == second["train/loss"] and first["val/acc"] == second["val/acc"]


def test_the_val_split_stays_when_the_seed_changes(make_cfg, tmp_path: Path) -> None:
    images, labels = random_faces(120, seed=3)
    root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 100 + ["PublicTest"] * 20)
    vals = []
    for seed in (1, 2):
        datamodule = instantiate(make_cfg(f"seed={seed}", f"data.root={root}", *ON_FILES, fast=False).data)
        datamodule.setup("fit")
        vals.append(sorted(datamodule.splits["val"].sources))
    assert vals[0] == vals[1] and len(vals[0]) > 0
    datamodule = instantiate(make_cfg(f"data.root={root}", *ON_FILES, "data.split_seed=5", fast=False).data)
    datamodule.setup("fit")
    assert sorted(datamodule.splits["val"].sources) != vals[0]  # split_seed is what moves it


def start_training(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    """A training run in its own process group (as SLURM and `timeout` see it), with two DataLoader workers."""
    args = [sys.executable, "-m", "fer_lightning.train", "data=synthetic", "data.synthetic.train=300", "data.batch_size=8",
            "data.num_workers=2", "data.augment=true", *SMALL_CNN, "trainer.enable_progress_bar=false",
            "trainer.log_every_n_steps=1", "test=false", "trainer.max_epochs=50", *overrides]
    return subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


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
    assert "killed by signal" not in output, output[-3000:]
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
        [sys.executable, "-m", "fer_lightning.train", "data=synthetic", "data.synthetic.train=300", "data.batch_size=8",
         "data.num_workers=0", "data.augment=true", *SMALL_CNN, "trainer.enable_progress_bar=false",
         "trainer.log_every_n_steps=1", "test=false", f"trainer.max_epochs={saved['epoch'] + 2}", "ckpt_path=last"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = event_scalars(run)
    for tag in ("lr/head", "val/acc", "train/loss"):
        steps = [e.step for e in events.Scalars(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    assert len(events.Scalars("val/acc")) == saved["epoch"] + 2


def test_resuming_with_more_epochs_continues_the_schedule_over_the_new_horizon(make_cfg, tmp_path: Path) -> None:
    lr = 1e-2
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", f"model.lr={lr}", "test=false"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    time.sleep(1.0)
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=4", f"model.lr={lr}", "test=false", f"ckpt_path={last}"))
    lrs = [e.value for e in event_scalars(tmp_path / "run").Scalars("lr/head")]
    # Cosine over 2 epochs ends at 0; resumed to 4, epoch 2 runs at the 4-epoch cosine's value there, lr/2.
    assert lrs[:2] == pytest.approx([lr, lr / 2])
    assert lrs[2:] == pytest.approx([lr * (1 + np.cos(np.pi * e / 4)) / 2 for e in (2, 3)])


def test_checkpoint_writes_are_atomic_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"weights": torch.zeros(1000)}  # about 5 kB
    big = {"weights": torch.zeros(200_000)}  # about 800 kB
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode == 0
    try:
        if not mounted:  # no permission to mount: the disk fills after 64 kB of any file, as a tmpfs would
            import fer_lightning.core.checkpoints as module

            real_save = torch.save

            def full_disk_save(obj: object, file) -> None:
                real_save(obj, file)
                if file.tell() > 64_000:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(module.torch, "save", full_disk_save)
        io = AtomicCheckpointIO()
        last = disk / "checkpoints" / "last.ckpt"
        io.save_checkpoint(small, last)
        with pytest.raises(CheckpointWriteError, match=f"last.ckpt in {last.parent}"):
            io.save_checkpoint(big, last)
        torch.testing.assert_close(torch.load(last, weights_only=True)["weights"], small["weights"])  # still whole
        assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no partial file left
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


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


def test_a_truncated_checkpoint_is_named(trained_checkpoint: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(trained_checkpoint.read_bytes()[:5000])
    with pytest.raises(ValueError, match=f"ckpt_path={cut} is not a readable checkpoint"):
        LoadedCheckpoint.load(cut)


def fake_run(root: Path, name: str, net: str, mtime: float) -> Path:
    last = root / "train" / "runs" / name / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    (last.parent.parent / ".hydra").mkdir()
    (last.parent.parent / ".hydra" / "config.yaml").write_text(f"model:\n  net:\n    _target_: {net}\n")
    os.utime(last, (mtime, mtime))
    return last


def test_ckpt_path_last_is_the_newest_of_the_same_model_under_the_configured_root(tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    cnn = fake_run(root, "a", "fer_lightning.models.cnn.scratch_cnn", 1000)
    resnet = fake_run(root, "b", "fer_lightning.models.transfer.resnet50", 2000)  # newer, another model
    assert find_checkpoint("last", root, "fer_lightning.models.cnn.scratch_cnn") == cnn
    assert find_checkpoint("last", root) == resnet
    with pytest.raises(FileNotFoundError, match="no training run of a .*vgg16 model") as error:
        find_checkpoint("last", root, "fer_lightning.models.transfer.vgg16")
    assert str(cnn) in str(error.value) and str(resnet) in str(error.value)  # the candidates are listed
    assert run_dir("last", str(root), "fer_lightning.models.cnn.scratch_cnn", "fresh") == str(cnn.parent.parent)


def test_a_checkpoint_outside_a_run_folder_starts_a_new_run(tmp_path: Path) -> None:
    loose = tmp_path / "downloads" / "model.ckpt"
    loose.parent.mkdir()
    loose.write_bytes(b"x")
    assert run_dir(str(loose), str(tmp_path), "any", "outputs/train/runs/new") == "outputs/train/runs/new"


@pytest.mark.parametrize("layout", ["folders", "csv"])
def test_data_without_a_test_split_trains_and_skips_the_test(make_cfg, tmp_path: Path, layout: str, caplog) -> None:
    images, labels = random_faces(80, seed=4)
    if layout == "folders":
        root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 80)  # train/ only
    else:
        root = tmp_path / "train.csv"  # Kaggle's train.csv: emotion,pixels, no Usage
        root.write_text("emotion,pixels\n" + "".join(f"{y},{' '.join(map(str, im.ravel()))}\n" for im, y in zip(images, labels)))
    caplog.set_level("INFO", logger="fer_lightning")
    metrics = train(make_cfg(*SMALL_CNN, f"data.root={root}", *ON_FILES, "data.val_fraction=0.25", fast=False))
    assert "Test skipped" in caplog.text
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["status"] == "completed" and "val/acc" in saved["metrics"] and "test/acc" not in metrics


def test_bad_csv_values_are_named_by_row(tmp_path: Path) -> None:
    images, labels = random_faces(3, seed=1)
    path = write_csv(tmp_path / "fer2013.csv", images, labels, ["Training"] * 3)
    lines = path.read_text().splitlines()
    pixels = lines[1].split(",")[1].split()
    lines[1] = f"{labels[0]},{' '.join(['300'] + pixels[1:])},Training"
    lines[2] = f"{labels[1]},{' '.join(['99999999999999999999999'] + pixels[1:])},Training"
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # with a byte-order mark, as Excel saves
    records, rejected = read_csv(path)
    assert len(records) == 1
    assert [r.source for r in rejected] == [f"{path}:2", f"{path}:3"]
    assert "outside 0..255 (first: 300)" in rejected[0].detail
    assert "too large" in rejected[1].detail


@pytest.mark.parametrize(("override", "message"), [
    ("model.lr=abc", "model.lr='abc': expected a number"),
    ("model.lr=-0.1", r"model.lr=-0.1: expected a value in \(0, inf\)"),
    ("model.dropout=1.5", r"model.dropout=1.5: expected a value in \[0, 1\)"),
    ("data.batch_size=0", r"data.batch_size=0: expected a value in \[1, inf\)"),
    ("data.batch_size=1.5", "data.batch_size=1.5: expected an integer"),
])
def test_bad_values_are_named_before_any_work(make_cfg, override: str, message: str) -> None:
    with pytest.raises(Exception, match=message):
        train(make_cfg(*SMALL_RUN, override))


def test_predict_skips_a_truncated_jpeg_as_training_would(trained_checkpoint: Path, make_cfg, tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    face, _ = random_faces(1, seed=2)
    cv2.imwrite(str(folder / "whole.jpg"), cv2.resize(face[0], (96, 96)))
    data = (folder / "whole.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    table, skipped = predict(make_cfg(f"ckpt_path={trained_checkpoint}", f"input={folder}", "predict.detect_faces=false",
                                      config="predict", fast=False))
    assert list(table["file"].map(lambda f: Path(f).name)) == ["whole.jpg"]
    assert list(skipped["file"].map(lambda f: Path(f).name)) == ["cut.jpg"] and "truncated" in skipped["reason"][0]


def test_a_sweep_on_several_devices_is_refused_and_an_all_failed_sweep_fails(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fer_lightning.train", "-m", "trainer=gpu", "trainer.devices=2", "model.lr=1e-3,3e-4",
               "data=synthetic"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "trainer.devices=2 inside a sweep (-m)" in result.stderr
    command = [sys.executable, "-m", "fer_lightning.train", "-m", "model.lr=-1,-2", "data=synthetic", "data.num_workers=0",
               f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "every job of the sweep failed" in result.stderr


def test_an_imagenet_checkpoint_with_gray_repeat_loads_everywhere(make_cfg, tmp_path: Path) -> None:
    weights = tmp_path / "resnet50.pth"
    torch.save(models.resnet50().state_dict(), weights)
    train(make_cfg("model=resnet50", "model.pretrained=false", f"model.weights_path={weights}", "model.net.gray=repeat",
                   "debug=limit", "trainer.max_epochs=1", "data.batch_size=8", "test=false"))
    trained = LoadedCheckpoint.load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert trained.model.net.scale.shape == (1, 3, 1, 1)  # ImageNet's three channels, as saved
    with torch.no_grad():
        assert trained.model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.slow  # two processes of ResNet50 on CPU: about a minute here
def test_transfer_learning_under_ddp_runs_through_the_unfreeze_epoch(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fer_lightning.train", "model=resnet50", "model.pretrained=false", "trainer=ddp",
               "trainer.accelerator=cpu", "trainer.devices=2", "callbacks.freeze_backbone.unfreeze_at_epoch=1",
               "trainer.max_epochs=2", "data=synthetic", "data.synthetic.train=8", "data.synthetic.val=4",
               "data.synthetic.test=4", "data.batch_size=8", "data.num_workers=0", "trainer.enable_progress_bar=false",
               "hydra.run.dir=run"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2
    assert "Images per class" not in (tmp_path / "run" / "train_ddp_process_1.log").read_text()
