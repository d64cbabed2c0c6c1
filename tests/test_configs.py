"""The configs: every model x augment choice builds and maps a batch to 7 logits, each approach is one command, every
recipe is more than an approach, and every ``_target_`` they name imports."""

from __future__ import annotations

import inspect

import albumentations as A
import pytest
import torch
import yaml
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.classes import NUM_CLASSES
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.trusted_targets import targets_in
from fer_lightning.data.datamodule import FERDataModule
from tests.conftest import SMALL_CNN

OPTIONAL = {"optuna", "hydra_plugins"}  # modules of optional extras (pip install -e '.[optuna]')


@pytest.mark.parametrize("model", ["cnn", "vgg16", "resnet50"])
@pytest.mark.parametrize("augment", [False, True])
def test_model_and_augment_configs_instantiate(make_cfg, model: str, augment: bool) -> None:
    cfg = make_cfg(f"model={model}", f"data.augment={str(augment).lower()}", "model.pretrained=false")
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, FERDataModule)
    train_steps = [type(t) for t in datamodule.transforms["train"].transforms]
    assert (A.Affine in train_steps and A.HorizontalFlip in train_steps) == augment
    assert A.Affine not in [type(t) for t in datamodule.transforms["val"].transforms]
    net = instantiate(cfg.model).net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 48, 48)).shape == (2, NUM_CLASSES)
    assert net.head[-1].out_features == NUM_CLASSES


@pytest.mark.parametrize("model", ["cnn", "resnet50"])
def test_image_size_sets_the_input_size(make_cfg, model: str) -> None:
    cfg = make_cfg(
        f"model={model}", "data.image_size=96", *(SMALL_CNN if model == "cnn" else ["model.pretrained=false"])
    )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images, _ = next(iter(datamodule.train_dataloader()))
    assert images.shape[1:] == (1, 96, 96)
    net = instantiate(cfg.model).net.eval()
    with torch.no_grad():
        assert net(images[:2]).shape == (2, NUM_CLASSES)


def test_gray_repeat_mode_matches_fold_mode(make_cfg) -> None:
    """Folding the first conv's RGB filters computes what repeating the gray channel does."""
    torch.manual_seed(0)
    repeat = instantiate(make_cfg("model=resnet50", "model.net.gray=repeat", "model.pretrained=false").model).net.eval()
    state = {k: v for k, v in repeat.state_dict().items()}
    folded = instantiate(make_cfg("model=resnet50", "model.net.gray=fold", "model.pretrained=false").model).net.eval()
    state["backbone.conv1.weight"] = state["backbone.conv1.weight"].sum(1, keepdim=True)
    folded.load_state_dict(state)
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), repeat(x), rtol=1e-4, atol=1e-4)


EXPERIMENTS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))
# The four approaches, one command each (README.md shows them, tests/test_readme.py): overrides -> (net, augmented,
# ImageNet weights).
APPROACHES = {
    (): ("scratch_cnn", False, False),
    ("data.augment=true",): ("scratch_cnn", True, False),
    ("model=vgg16", "data.augment=true"): ("vgg16", True, True),
    ("model=resnet50", "data.augment=true"): ("resnet50", True, True),
}


@pytest.mark.parametrize("overrides", list(APPROACHES), ids=lambda o: " ".join(o) or "defaults")
def test_each_approach_is_one_command(make_cfg, overrides: tuple[str, ...]) -> None:
    net, augmented, imagenet = APPROACHES[overrides]
    cfg = make_cfg(*overrides, fast=False)
    assert cfg.model.net._target_.endswith(net) and cfg.data.augment is augmented
    assert cfg.model.pretrained is imagenet and ("freeze_backbone" in cfg.callbacks) is imagenet


def without_run_keys(cfg: DictConfig) -> dict:
    plain = OmegaConf.to_container(cfg, resolve=False)
    return {key: value for key, value in plain.items() if key not in ("hydra", "hparams")}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_recipe_composes_and_is_more_than_the_approach_it_starts_from(make_cfg, name: str) -> None:
    cfg = make_cfg(f"experiment={name}", fast=False)
    choices = cfg.hydra.runtime.choices
    approach = make_cfg(
        f"model={choices.model}", f"data={choices.data}", f"data.augment={cfg.data.augment}", fast=False
    )
    assert without_run_keys(cfg) != without_run_keys(approach), f"experiment={name} only restates an approach"


def config_targets() -> list[tuple[str, str]]:
    """(file: key, target) for every _target_ in conf/."""
    return [
        (f"{path.relative_to(CONFIG_DIR)}: {key}", target)
        for path in sorted(CONFIG_DIR.rglob("*.yaml"))
        for key, target in targets_in(yaml.safe_load(path.read_text()))
    ]


@pytest.mark.parametrize(("where", "target"), config_targets(), ids=lambda value: str(value))
def test_every_target_in_the_configs_imports(where: str, target: str) -> None:
    if target.split(".")[0] in OPTIONAL:
        pytest.importorskip(target.split(".")[0], reason=f"optional extra ({where})")
    assert callable(get_object(target)), where


def test_the_configs_name_targets() -> None:
    assert len(config_targets()) > 20  # the walk finds them (a YAML layout change would make the test above empty)


PACKAGE = "fer_lightning"
# A builder that hands its extra keys on: its config's keys are checked against the class they reach.
FORWARDED = {"fer_lightning.models.cnn.scratch_cnn": "fer_lightning.models.cnn.ScratchCNN"}


def differing_defaults(node: object, path: str = "") -> list[str]:
    """``key: config value, code default`` wherever a config file gives a project ``_target_`` a plain value (not an
    interpolation) that differs from the default of that parameter in code: one source per default."""
    found = []
    if isinstance(node, dict):
        target = node.get("_target_")
        if isinstance(target, str) and target.startswith("fer_lightning."):
            built = [get_object(t) for t in (target, FORWARDED.get(target)) if t]
            # The project's own parameters only: a subclass that keeps a library's __init__ keeps its defaults too.
            own = [
                b
                for b in built
                if getattr(b.__init__ if isinstance(b, type) else b, "__module__", "").startswith(PACKAGE)
            ]
            signatures = [inspect.signature(b) for b in own]
            for key, value in node.items():
                parameter = next((s.parameters[key] for s in signatures if key in s.parameters), None)
                if parameter is None or parameter.default is inspect.Parameter.empty:
                    continue
                if isinstance(value, dict) or (isinstance(value, str) and "${" in value):
                    continue
                default = list(parameter.default) if isinstance(parameter.default, tuple) else parameter.default
                if default != value:
                    found.append(f"{path}.{key}: config {value!r}, code {default!r} ({target})")
        for key, value in node.items():
            found += differing_defaults(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += differing_defaults(value, f"{path}.{index}")
    return found


@pytest.mark.parametrize("config", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_code_defaults_agree_with_the_configs(config) -> None:
    assert not differing_defaults(OmegaConf.to_container(OmegaConf.load(config), resolve=False))


def test_the_transfer_nets_default_to_the_data_configs_normalisation() -> None:
    data = OmegaConf.load(CONFIG_DIR / "data" / "fer2013.yaml")
    for name in ("vgg16", "resnet50"):
        parameters = inspect.signature(get_object(f"fer_lightning.models.transfer.{name}")).parameters
        assert (parameters["data_mean"].default, parameters["data_std"].default) == (data.mean, data.std), name
