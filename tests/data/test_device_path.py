"""The device path (data.on_device): faces resident on the training device, index batches from the DataLoader, the
recipe run there on whole batches. Trained as the worker path trains: seeded runs repeat, ranks draw apart, DDP
shards stay disjoint, ten-crop training, and bad settings named in one line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from fer_lightning.data.datamodule import ON_DEVICE_AUTO, FERDataModule, IndexBatch, ResidentFaces
from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN, SMALL_RUN, TRAIN_COMMAND

DEVICE = ["data.on_device=true", "data.augment=true"]


def test_a_seeded_run_on_the_device_path_repeats_exactly(make_cfg) -> None:
    overrides = [*SMALL_RUN, *DEVICE, "trainer.max_epochs=2", "trainer.deterministic=true", "seed=7", "test=false"]
    first, second = (train(make_cfg(*overrides)) for _ in range(2))
    assert first["train/loss"] == second["train/loss"] and first["val/acc"] == second["val/acc"]
    third = train(make_cfg(*[o for o in overrides if o != "seed=7"], "seed=8"))
    assert third["train/loss"] != first["train/loss"]  # the seed reaches the augmentation


def test_the_generator_is_seeded_by_seed_rank_and_epoch(monkeypatch) -> None:
    def draws(seed: int, rank: int, epoch: int) -> torch.Tensor:
        monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))
        resident = ResidentFaces()
        resident.seed_epoch(epoch, rank, torch.device("cpu"))
        return torch.rand(5, generator=resident.generator)

    assert torch.equal(draws(1, 0, 0), draws(1, 0, 0))
    assert not torch.equal(draws(1, 0, 0), draws(1, 1, 0))  # ranks differ
    assert not torch.equal(draws(1, 0, 0), draws(1, 0, 1))  # epochs differ
    assert not torch.equal(draws(1, 0, 0), draws(2, 0, 0))


def attached(make_cfg, *overrides: str) -> FERDataModule:
    """A datamodule set up under a Trainer on the CPU, as fit sets it up."""
    cfg = make_cfg(*SMALL_CNN, *overrides)
    datamodule: FERDataModule = instantiate(cfg.data)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    datamodule.trainer = trainer
    datamodule.setup("fit")
    return datamodule


def test_val_batches_are_the_worker_paths_faces(make_cfg) -> None:
    """Resize, centre crop and normalise on the device give the pixels albumentations gives (one grey level)."""
    device = attached(make_cfg, "data.on_device=true", "data.crop_size=44", "data.image_size=52")
    workers = attached(make_cfg, "data.on_device=false", "data.crop_size=44", "data.image_size=52")
    batch = next(iter(device.val_dataloader()))
    assert isinstance(batch, IndexBatch) and batch.split == "val"
    images, labels = device.on_after_batch_transfer(batch, 0)
    expected_images, expected_labels = next(iter(workers.val_dataloader()))
    assert torch.equal(labels, expected_labels)
    assert images.shape == expected_images.shape == (len(labels), 1, 44, 44)
    assert (images - expected_images).abs().max() <= 1.01 / (0.25 * 255)


def test_auto_picks_the_benchmarked_path_for_the_device(make_cfg, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fer_lightning")
    datamodule = attached(make_cfg, "data.on_device=auto", "data.num_workers=2")
    assert datamodule.faces_on_device() is ON_DEVICE_AUTO["cpu"]
    if ON_DEVICE_AUTO["cpu"]:  # the workers it asked for are not started, and the run says so
        assert "Faces resident on cpu (data.on_device=auto)" in caplog.text
        assert "data.num_workers=2 unused" in caplog.text
    assert isinstance(next(iter(attached(make_cfg, "data.on_device=true").train_dataloader())), IndexBatch)


def test_ten_crop_training_trains_ten_crops_of_every_face(make_cfg) -> None:
    datamodule = attached(make_cfg, *DEVICE, "data.crop_size=40", "data.ten_crop_train=true", "data.batch_size=4")
    datamodule.trainer.state.stage = "train"
    images, labels = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert images.shape == (40, 1, 40, 40) and labels.shape == (40,)
    assert (labels.view(4, 10) == labels.view(4, 10)[:, :1]).all()  # each face's ten crops keep its label
    metrics = train(make_cfg(*SMALL_RUN, *DEVICE, "data.crop_size=40", "data.ten_crop_train=true", "test=false"))
    assert np.isfinite(metrics["train/loss"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.ten_crop_train=true", "data.augment=true"], "ten_crop_train=true trains ten crops of data.crop_size"),
        (["data.ten_crop_train=true", "data.augment=true", "data.crop_size=40", "data.on_device=false"],
         "ten_crop_train=true runs on the training device: set data.on_device=true"),
        (["data.on_device=maybe"], "data.on_device"),
        (["data.augment=true", "+data.augmentation.zoom._target_=albumentations.RandomResizedCrop",
          "+data.augmentation.zoom.size=[40,40]"], r"augmentation.zoom: RandomResizedCrop size=\[40, 40\] changes"),
        (["data.on_device=true", "data.augment=true", "+data.augmentation.blur._target_=albumentations.GaussianBlur"],
         "GaussianBlur is a transform, which the batched device path does not run; set data.on_device=false"),
    ],
)  # fmt: skip
def test_bad_device_path_settings_are_named_in_one_line(make_cfg, overrides: list[str], message: str) -> None:
    with pytest.raises((ValueError, InstantiationException), match=message):
        train(make_cfg(*SMALL_RUN, *overrides, "test=false"))


def test_ddp_with_two_processes_trains_disjoint_shards_on_the_device_path(tmp_path: Path) -> None:
    command = [
        *TRAIN_COMMAND, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data=synthetic",
        "data.synthetic.train=10", "data.synthetic.val=4", "data.synthetic.test=4", "data.batch_size=16",
        *DEVICE, *SMALL_CNN, "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false", "hydra.run.dir=run",
        "+callbacks.shard._target_=tests.data.device_probe.WriteShard", f"+callbacks.shard.folder={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # tests.data importable
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (set(json.loads((tmp_path / f"shard_{rank}.json").read_text())) for rank in (0, 1))
    assert first and second and not first & second  # each face on one process
    assert len(first | second) >= 70 - 2 * 16  # the 70 train faces, but what drop_last leaves out
