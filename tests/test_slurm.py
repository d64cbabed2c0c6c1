"""The cluster path: hydra/launcher=slurm asks SLURM for what the trainer needs; a requeued job goes on from where
it stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.resume import requeued_checkpoint
from fer_lightning.train import train
from tests.conftest import SMALL_CNN


def tensorboard_steps(run: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()  # honours the purge a resumed run writes: what TensorBoard draws
    return [e.step for e in events.Scalars(tag)]


def test_the_slurm_launcher_asks_slurm_for_what_the_trainer_needs(make_cfg) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="optional extra: pip install -e '.[slurm]'")

    def launcher(*overrides: str) -> tuple[dict, dict]:
        cfg = make_cfg("hydra/launcher=slurm", *overrides)
        return OmegaConf.to_container(cfg.hydra.launcher, resolve=True), OmegaConf.to_container(cfg.trainer, resolve=True)

    job, trainer = launcher()  # a sweep job: one process on one node, no GPU for the CPU trainer
    assert (job["tasks_per_node"], job["nodes"], job["gpus_per_node"]) == (trainer["devices"], 1, None) == (1, 1, None)
    assert job["additional_parameters"]["signal"] == f"USR1@{job['signal_delay_s']}"  # Lightning's requeue signal
    assert job["_target_"].endswith("SlurmLauncher") and job["partition"] is None
    assert launcher("trainer=gpu")[0]["gpus_per_node"] == 1
    # trainer=ddp: SLURM starts one task per device on each node, and Lightning's SLURM environment checks just that.
    job, trainer = launcher("trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=4", "trainer.num_nodes=2")
    assert job["tasks_per_node"] == trainer["devices"] == 4 and job["nodes"] == trainer["num_nodes"] == 2
    assert job["gpus_per_node"] == 4


def test_a_requeued_slurm_job_goes_on_from_the_newest_checkpoint_in_its_folder(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "checkpoints").mkdir()
    last, hpc = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt"
    for age, path in enumerate([last, hpc]):  # last.ckpt (SIGTERM) is written after hpc_ckpt_1 (the requeue signal)
        path.write_bytes(b"")
        os.utime(path, (1e9 - age, 1e9 - age))
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert requeued_checkpoint(tmp_path) is None  # a first start: only the run's own ckpt_path counts
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert requeued_checkpoint(tmp_path) == last
    os.utime(hpc, (2e9, 2e9))  # killed before SIGTERM could save: Lightning's checkpoint is the newest
    assert requeued_checkpoint(tmp_path) == hpc
    assert requeued_checkpoint(tmp_path / "nothing_saved") is None


class SigtermInEpochOne(Callback):
    """What SLURM's SIGTERM does to a run: Lightning's handler sets the flag and the loop stops at the next batch."""

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            trainer._signal_connector.received_sigterm = True


def test_a_run_stopped_mid_epoch_and_resumed_draws_every_epoch_once_lr_included(make_cfg, tmp_path: Path) -> None:
    overrides = [*SMALL_CNN, "trainer.max_epochs=2", "test=false"]
    with pytest.raises(SIGTERMException):
        train(make_cfg(*overrides, f"+callbacks.sigterm._target_={__name__}.SigtermInEpochOne"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    train(make_cfg(*overrides, f"ckpt_path={last}"))
    for tag in ("val/acc", "train/loss", "lr/head"):  # Lightning skips on_train_epoch_start on a mid-epoch resume
        assert tensorboard_steps(tmp_path / "run", tag) == [0, 1], tag
