"""Checkpoints written before the package moved into subpackages load: their stored configs are read with
today's names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from fer_lightning.core.checkpoints import CONFIG_KEY, read_checkpoint
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.legacy import MOVED_MODULES, upgrade_config
from fer_lightning.core.trusted_targets import is_trusted
from fer_lightning.evaluation.evaluate import evaluate
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.training.resume import resume_state

OLD_MODULE = {new: old for old, new in MOVED_MODULES.items()}


def as_written_before_the_move(node: Any) -> Any:
    """A stored config as the flat package wrote it: every moved module under its old name."""
    if isinstance(node, dict):
        return {key: as_written_before_the_move(value) for key, value in node.items()}
    if isinstance(node, list):
        return [as_written_before_the_move(value) for value in node]
    if isinstance(node, str) and node.startswith("fer_lightning."):
        module, _, name = node.rpartition(".")
        return f"{OLD_MODULE.get(module, module)}.{name}"
    return node


@pytest.fixture
def old_checkpoint(trained_checkpoint: Path, tmp_path: Path) -> Path:
    """The shared checkpoint rewritten in the old layout, with a warm-up + cosine schedule and the data.seed key that
    FERDataModule took then (as the released model's file has them)."""
    checkpoint = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)  # as written, not upgraded
    config = checkpoint[CONFIG_KEY]
    config["model"]["scheduler"] = {
        "_target_": "fer_lightning.models.schedules.warmup_cosine",
        "_partial_": True,
        "warmup_fraction": 0.03,
    }
    config["data"]["seed"] = 42
    checkpoint[CONFIG_KEY] = as_written_before_the_move(config)
    path = tmp_path / "old_layout.ckpt"
    torch.save(checkpoint, path)
    return path


def test_the_fixture_is_written_in_the_old_layout(old_checkpoint: Path) -> None:
    stored = torch.load(old_checkpoint, weights_only=True)[CONFIG_KEY]
    assert stored["model"]["_target_"] == "fer_lightning.classifier.EmotionClassifier"
    assert stored["model"]["scheduler"]["_target_"] == "fer_lightning.schedules.warmup_cosine"
    assert stored["trainer"]["plugins"][0]["_target_"] == "fer_lightning.checkpoints.AtomicCheckpointIO"
    assert stored["callbacks"]["time_to_accuracy"]["_target_"] == "fer_lightning.callbacks.TimeToAccuracy"
    assert not is_trusted("fer_lightning.classifier.EmotionClassifier", CONFIG_DIR)  # refused, were it not upgraded


def test_an_old_layout_checkpoint_loads_under_todays_names_and_predicts_as_before(
    old_checkpoint: Path, trained_checkpoint: Path
) -> None:
    old = LoadedCheckpoint.load(old_checkpoint, device="cpu")
    assert old.config.model._target_ == "fer_lightning.models.classifier.EmotionClassifier"
    assert old.config.model.scheduler._target_ == "fer_lightning.models.schedules.warmup_cosine"
    assert old.config.trainer.plugins[0]._target_ == "fer_lightning.core.checkpoints.AtomicCheckpointIO"
    assert "seed" not in old.config.data
    faces = torch.rand(4, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(
            old.model(faces), LoadedCheckpoint.load(trained_checkpoint, device="cpu").model(faces)
        )


def test_eval_and_resume_read_an_old_layout_checkpoint(old_checkpoint: Path, make_cfg, tmp_path: Path) -> None:
    metrics = evaluate(
        make_cfg(f"ckpt_path={old_checkpoint}", "report.saliency_per_class=0", config="eval", fast=False)
    )
    assert metrics["images"] == 7 * 8 and 0 <= metrics["acc"] <= 1  # the stored data config built the test split
    path, first_epoch, _ = resume_state(str(old_checkpoint), str(tmp_path), "fer_lightning.models.cnn.scratch_cnn")
    assert path == old_checkpoint and first_epoch == read_checkpoint(old_checkpoint)["epoch"] + 1


def test_the_upgrade_renames_moved_targets_and_leaves_the_rest() -> None:
    stored = {
        "a": {"_target_": "fer_lightning.callbacks.WriteLeaderboard"},
        "b": [{"_target_": "os.system"}],
        "c": {"_target_": "fer_lightning.bench.ExitAtFirstStep", "x": "fer_lightning.callbacks.Other"},
    }
    assert upgrade_config(stored) == {
        "a": {"_target_": "fer_lightning.training.leaderboard.WriteLeaderboard"},
        "b": [{"_target_": "os.system"}],  # unknown: left as it is, for the trusted-targets check to refuse
        "c": {"_target_": "fer_lightning.tools.bench.ExitAtFirstStep", "x": "fer_lightning.callbacks.Other"},
    }
