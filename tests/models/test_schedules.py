"""Every schedule option keeps the head and backbone groups at their ratio, and warm-up + cosine has its shape."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.models.schedules import one_cycle, warmup_cosine
from tests.conftest import SMALL_CNN

SCHEDULES = sorted(path.stem for path in (CONFIG_DIR / "model" / "scheduler").glob("*.yaml"))
STEPS_PER_EPOCH, EPOCHS = 5, 12


def test_every_schedule_option_is_tested() -> None:
    assert SCHEDULES == ["cosine", "one_cycle", "plateau", "warmup_cosine"]


def lr_history(make_cfg, schedule: str) -> np.ndarray:
    """(steps, 2): the head's and the backbone's lr at each training step of a run, the schedule built by the
    module as training builds it (model.backbone_lr_ratio=0.1; plateau sees a val accuracy that never improves)."""
    cfg = make_cfg(
        f"model/scheduler={schedule}", "model.backbone_lr_ratio=0.1", *SMALL_CNN, f"trainer.max_epochs={EPOCHS}"
    )
    model = instantiate(cfg.model)
    model._trainer = SimpleNamespace(estimated_stepping_batches=STEPS_PER_EPOCH * EPOCHS)  # what build_scheduler reads
    optimizer = model.build_optimizer()
    scheduler = model.build_scheduler(optimizer)
    per_step = cfg.model.scheduler_interval == "step"
    history = []
    for _ in range(EPOCHS):
        for _ in range(STEPS_PER_EPOCH):
            history.append([group["lr"] for group in optimizer.param_groups])
            optimizer.step()
            if per_step:
                scheduler.step()
        if not per_step:
            scheduler.step(0.5) if cfg.model.scheduler_monitor else scheduler.step()
    assert [group["name"] for group in optimizer.param_groups] == ["head", "backbone"]
    return np.array(history)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_keeps_the_backbone_at_its_ratio_of_the_heads_lr(make_cfg, schedule: str) -> None:
    lrs = lr_history(make_cfg, schedule)
    head, backbone = lrs[:, 0], lrs[:, 1]
    assert len(np.unique(head.round(12))) > 1, "the schedule never changed the lr"
    np.testing.assert_allclose(backbone, 0.1 * head, rtol=1e-6)


def test_warmup_cosine_rises_linearly_then_falls_to_zero_at_the_end() -> None:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = warmup_cosine(optimizer, total_steps=100, warmup_fraction=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    lrs = np.array(lrs)
    np.testing.assert_allclose(lrs[:10], 0.1 * np.arange(1, 11) / 10)  # linear warm-up to the full lr
    assert (np.diff(lrs[:10]) > 0).all() and (np.diff(lrs[10:]) <= 1e-12).all()  # up, then never up again
    assert lrs[55] == pytest.approx(0.05, rel=0.02)  # half-way down the cosine: half the lr
    assert lrs[-1] < 1e-4 and optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # ~0 at the end


def test_one_cycle_rebuilt_on_resume_keeps_each_groups_peak_not_the_lr_reached() -> None:
    head, backbone = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([{"params": [head], "lr": 0.1}, {"params": [backbone], "lr": 0.01}], momentum=0.9)
    scheduler = one_cycle(optimizer, total_steps=20)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    one_cycle(optimizer, total_steps=40)  # as ScheduleOverNewHorizon rebuilds it for a longer run
    assert [group["max_lr"] for group in optimizer.param_groups] == [0.1, 0.01]


def test_a_run_without_an_epoch_limit_gets_a_schedule_horizon_or_is_refused_before_any_work(
    make_cfg, tmp_path: Path
) -> None:
    from fer_lightning.training.run import train

    run = tmp_path / "run"
    # CosineAnnealingLR's T_max=-1 swings the lr between model.lr and 0 every epoch: refused, whatever max_steps says.
    with pytest.raises(ValueError, match=r"max_epochs=-1 \(no limit\): the lr schedule .*CosineAnnealingLR runs"):
        train(make_cfg(*SMALL_CNN, "trainer.max_epochs=-1", "+trainer.max_steps=2"))
    # A per-step schedule with no length at all (an infinite total_steps): refused too.
    with pytest.raises(ValueError, match=r"warmup_cosine runs over the run's steps and needs a length"):
        train(make_cfg(*SMALL_CNN, "model/scheduler=warmup_cosine", "trainer.max_epochs=-1"))
    assert not run.exists()  # refused before the run wrote anything
    # Its length from trainer.max_steps (here two epochs of one batch); a schedule without a horizon needs none.
    for schedule in ("warmup_cosine", "plateau"):
        one_batch = ["data.batch_size=128", "trainer.max_epochs=-1", "+trainer.max_steps=2"]
        assert train(make_cfg(*SMALL_CNN, f"model/scheduler={schedule}", *one_batch))["val/acc_best"] >= 0
