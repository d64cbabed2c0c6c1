"""Knowledge distillation (model.teacher): the loss it adds, and a run that learns from a teacher it does not save."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from fer_lightning.core.checkpoints import CONFIG_KEY
from fer_lightning.models.classifier import EmotionClassifier
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.training.run import load_teacher, train
from tests.conftest import SMALL_CNN


def student(make_cfg, teacher: Path, *overrides: str):
    """The teacher's own net as a student (same sizes, its weights), distilling from it (handed in as training/run.py
    hands it)."""
    cfg = make_cfg(*SMALL_CNN, f"model.teacher={teacher}", *overrides)
    model = instantiate(cfg.model, teacher=load_teacher(cfg))
    model.load_state_dict(LoadedCheckpoint.load(teacher, device="cpu").model.state_dict())
    model.on_fit_start()
    return model.eval()


def test_the_distillation_term_is_zero_for_the_teachers_own_net_and_the_kl_otherwise(
    make_cfg, trained_checkpoint: Path
) -> None:
    images, labels = torch.randn(6, 1, 48, 48), torch.tensor([0, 1, 2, 3, 4, 5])
    model = student(make_cfg, trained_checkpoint, "model.distill_weight=1.0", "model.distill_temperature=3.0")
    with torch.no_grad():
        loss, logits = model.step((images, labels), "train")
        assert abs(loss.item()) < 1e-5  # the student is the teacher: nothing to learn from it
        moved = logits + torch.randn(logits.shape, generator=torch.Generator().manual_seed(0))
        teacher = model.teacher[0](images)
        expected = 9 * (F.softmax(teacher / 3, -1) * (F.log_softmax(teacher / 3, -1) - F.log_softmax(moved / 3, -1)))
        torch.testing.assert_close(model.distillation(images, moved), expected.sum(-1).mean())
    plain = student(make_cfg, trained_checkpoint, "model.distill_weight=0.0")
    with torch.no_grad():
        loss, logits = plain.step((images, labels), "train")
        torch.testing.assert_close(loss, F.cross_entropy(logits, labels))


def test_a_run_with_a_teacher_trains_and_its_checkpoint_holds_only_the_student(
    make_cfg, trained_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    distillation = EmotionClassifier.distillation
    monkeypatch.setattr(
        EmotionClassifier, "distillation", lambda self, *args: calls.append(self.training) or distillation(self, *args)
    )
    cfg = make_cfg(*SMALL_CNN, f"model.teacher={trained_checkpoint}", "test=false")
    train(cfg)
    assert calls and all(calls)  # every training step, and only training steps, learned from the teacher
    saved = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert saved["state_dict"].keys() == LoadedCheckpoint.load(trained_checkpoint).model.state_dict().keys()
    assert saved[CONFIG_KEY]["model"]["teacher"] == str(trained_checkpoint)  # the run's config names its teacher
    assert "teacher" not in saved["hyper_parameters"]  # a module: never pickled into the checkpoint


def test_a_teacher_of_another_input_size_is_named(make_cfg, trained_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"model.teacher=.*last.ckpt takes 48-pixel faces, this run's net 44"):
        student_cfg = make_cfg(*SMALL_CNN, f"model.teacher={trained_checkpoint}", "data.crop_size=44")
        load_teacher(student_cfg)
