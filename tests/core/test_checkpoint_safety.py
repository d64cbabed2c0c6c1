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
from fer_lightning.models.ensemble import write_ensemble
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
        # Interpolations that instantiate() would resolve after the targets were checked: the code sits outside
        # model and data (trainer.evil), or oc.create makes a target out of a plain string inside model.
        "interpolation": ("model", "${trainer.evil}"),
        "interpolation_in_a_list": ("data", ["${trainer.evil}"]),
        "oc_create": (
            "model",
            '${oc.create:"{_target_: pathlib.Path.touch, self: ' + str(tmp_path / "marker_create") + '}"}',
        ),
    }


HOSTILE = ["torch_load", "builtins_open", "path_touch", "nested_in_a_list", "interpolation", "interpolation_in_a_list",
           "oc_create"]  # fmt: skip


@pytest.fixture(params=HOSTILE)
def hostile_checkpoint(request: pytest.FixtureRequest, trained_checkpoint: Path, tmp_path: Path) -> Path:
    section, entry = payloads(tmp_path)[request.param]
    checkpoint = read_checkpoint(trained_checkpoint)
    checkpoint[CONFIG_KEY][section]["extra"] = entry
    # What an interpolation reaches: a target outside the sections the loader builds.
    touch = {
        "_target_": "pathlib.Path.touch",
        "self": {"_target_": "pathlib.Path", "_args_": [str(tmp_path / "marker_evil")]},
    }
    checkpoint[CONFIG_KEY]["trainer"]["evil"] = touch
    path = tmp_path / "hostile.ckpt"
    torch.save(checkpoint, path)
    return path


def markers(tmp_path: Path) -> list[Path]:
    return list(tmp_path.glob("marker_*"))


def test_the_loader_refuses_a_stored_config_that_names_code(hostile_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"hostile.ckpt: its stored config (names|holds the interpolation) (model|data)\.extra.*nothing was built",
    ):
        LoadedCheckpoint.load(hostile_checkpoint, device="cpu")
    assert not markers(tmp_path)


@pytest.mark.parametrize("entry", ["eval", "predict", "export", "api", "ensemble", "teacher"])
def test_no_entry_point_runs_a_hostile_checkpoint(
    hostile_checkpoint: Path, trained_checkpoint: Path, tmp_path: Path, make_cfg, entry: str
) -> None:
    if entry == "api":

        def call() -> object:
            return EmotionRecognizer.from_checkpoint(hostile_checkpoint, overrides=["detect_faces=false"])
    elif entry == "ensemble":  # a hostile member never makes a clean-looking ensemble file
        members = f"members=[{trained_checkpoint},{hostile_checkpoint}]"
        cfg = make_cfg(members, f"file={tmp_path / 'pair.ckpt'}", config="ensemble", fast=False)

        def call() -> object:
            return write_ensemble(cfg)
    elif entry == "teacher":  # distillation from a hostile checkpoint
        from fer_lightning.training.run import train
        from tests.conftest import SMALL_CNN

        cfg = make_cfg(*SMALL_CNN, f"model.teacher={hostile_checkpoint}", "test=false")

        def call() -> object:
            return train(cfg)
    else:
        run = {"eval": evaluate, "predict": predict, "export": export}[entry]
        extra = [f"input={tmp_path}"] if entry == "predict" else []
        cfg = make_cfg(f"ckpt_path={hostile_checkpoint}", *extra, config=entry, fast=False)

        def call() -> object:
            return run(cfg)

    with pytest.raises(ValueError, match="nothing was built"):
        call()
    assert not markers(tmp_path)
    assert not (tmp_path / "pair.ckpt").exists()


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


def test_a_compact_files_data_root_is_read_without_a_resolver(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch
) -> None:
    from fer_lightning.core.checkpoints import compact_checkpoint, trusted_config

    compact = compact_checkpoint(trained_checkpoint)
    monkeypatch.setenv("FER_DATA_ROOT", str(tmp_path / "faces"))
    assert trusted_config(compact, tmp_path / "compact.pt").data.root == str(tmp_path / "faces")
    monkeypatch.delenv("FER_DATA_ROOT")
    assert trusted_config(compact, tmp_path / "compact.pt").data.root == "data/fer2013"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("state_dict"), "holds nothing under state_dict, expected the model's weights"),
        (lambda c: c.update({CONFIG_KEY: "model: {}"}), "its stored config .* is a str without model and data"),
    ],
)
def test_a_checkpoint_missing_its_parts_is_named_in_one_line(
    trained_checkpoint: Path, tmp_path: Path, change, message: str
) -> None:
    checkpoint = torch.load(trained_checkpoint, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, tmp_path / "odd.ckpt")
    with pytest.raises(ValueError, match=message):
        LoadedCheckpoint.load(tmp_path / "odd.ckpt", device="cpu")


def test_a_torchscript_file_is_called_by_its_name(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "net.pt")
    with pytest.raises(ValueError, match="is a TorchScript export, not a checkpoint"):
        read_checkpoint(tmp_path / "net.pt")
