"""The cluster path: hydra/launcher=slurm asks SLURM for what the trainer needs."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf


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
