"""A checkpoint is data: a stored config that names code to run is refused before anything is built."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch

from fer_lightning.core.checkpoints import CONFIG_KEY, read_checkpoint
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.trusted_targets import is_trusted
from fer_lightning.evaluation.evaluate import evaluate
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.export import export
from fer_lightning.serving.predict import predict
from fer_lightning.serving.recognizer import EmotionRecognizer


class Marker:
    """Unpickled (torch.load with weights_only=False), it touches its file: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return pathlib.Path.touch, (self.path,)


def payloads(tmp_path: Path) -> dict[str, tuple[str, dict]]:
    """The hostile entries seen in the wild: (section, entry) per name."""
    second = tmp_path / "second.ckpt"
    torch.save({"x": Marker(tmp_path / "marker_load")}, second)
    return {
        "torch_load": ("model", {"_target_": "torch.load", "f": str(second), "weights_only": False}),
        "builtins_open": ("model", {"_target_": "builtins.open", "file": str(tmp_path / "marker_open"), "mode": "w"}),
        "path_touch": ("data", {"_target_": "pathlib.Path.touch", "self": str(tmp_path / "marker_touch")}),
        "nested_in_a_list": ("data", {"augmentation_list": [{"_target_": "os.system", "_args_": ["true"]}]}),
    }


@pytest.fixture(params=["torch_load", "builtins_open", "path_touch", "nested_in_a_list"])
def hostile_checkpoint(request: pytest.FixtureRequest, trained_checkpoint: Path, tmp_path: Path) -> Path:
    section, entry = payloads(tmp_path)[request.param]
    checkpoint = read_checkpoint(trained_checkpoint)
    checkpoint[CONFIG_KEY][section]["extra"] = entry
    path = tmp_path / "hostile.ckpt"
    torch.save(checkpoint, path)
    return path


def markers(tmp_path: Path) -> list[Path]:
    return list(tmp_path.glob("marker_*"))


def test_the_loader_refuses_a_stored_config_that_names_code(hostile_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"hostile.ckpt: its stored config names (model|data)\.extra.*nothing was built"
    ):
        LoadedCheckpoint.load(hostile_checkpoint, device="cpu")
    assert not markers(tmp_path)


@pytest.mark.parametrize("entry", ["eval", "predict", "export", "api"])
def test_no_entry_point_runs_a_hostile_checkpoint(
    hostile_checkpoint: Path, tmp_path: Path, make_cfg, entry: str
) -> None:
    if entry == "api":

        def call() -> object:
            return EmotionRecognizer.from_checkpoint(hostile_checkpoint, overrides=["detect_faces=false"])
    else:
        run = {"eval": evaluate, "predict": predict, "export": export}[entry]
        extra = [f"input={tmp_path}"] if entry == "predict" else []
        cfg = make_cfg(f"ckpt_path={hostile_checkpoint}", *extra, config=entry, fast=False)

        def call() -> object:
            return run(cfg)

    with pytest.raises(ValueError, match="nothing was built"):
        call()
    assert not markers(tmp_path)


def test_a_resume_from_a_hostile_checkpoint_is_refused(hostile_checkpoint: Path, tmp_path: Path, make_cfg) -> None:
    from fer_lightning.training.run import train
    from tests.conftest import SMALL_CNN

    with pytest.raises(ValueError, match="nothing was built"):
        train(make_cfg(*SMALL_CNN, f"ckpt_path={hostile_checkpoint}", "trainer.max_epochs=3", "test=false"))
    assert not markers(tmp_path)


@pytest.mark.parametrize(
    ("target", "trusted"),
    [
        ("fer_lightning.models.cnn.scratch_cnn", True),  # named by conf/model/cnn.yaml
        ("albumentations.GaussianBlur", True),  # a transform a user may add by override
        ("torchvision.transforms.v2.MixUp", True),
        ("torch.optim.Adam", True),
        ("torch.optim.lr_scheduler.StepLR", True),
        ("torch.load", False),  # a function in a trusted family's module is not a class of it
        ("torch.optim.lr_scheduler.warnings", False),
        ("albumentations.core.serialization.load", False),
        ("fer_lightning.core.checkpoints.save_whole", False),  # this package, but no config names it
        ("builtins.exec", False),
        ("os.system", False),
        (None, False),
    ],
)
def test_the_trusted_targets(target: str | None, trusted: bool) -> None:
    assert is_trusted(target, CONFIG_DIR) is trusted
