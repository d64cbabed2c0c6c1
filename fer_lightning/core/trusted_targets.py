"""Which ``_target_`` a config read from a file may name: a checkpoint's stored config is data, not code.

``torch.load(weights_only=True)`` keeps pickles out, but Hydra's ``instantiate()`` calls whatever ``_target_``
names (``torch.load`` of a second file, ``builtins.open``, ``pathlib.Path.touch`` ...). Before anything in a stored
config is built, every target in it must be one this project's own configs name, or a class of the families a user
may put in an override (albumentations transforms, torchvision v2 transforms such as MixUp, torch optimizers and
schedulers) or an earlier version's config named (Lightning's loggers). Names are looked up in those modules only;
nothing else is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

# Config groups that build nothing from a checkpoint (Hydra's own plugins, the sweepers) stay out of the list.
_UNUSED_GROUPS = ("hydra", "hparams_search")


def _families() -> dict[str, Callable[[Any], bool]]:
    """module -> the test a class named in it must pass."""
    import albumentations as A
    import torch
    from lightning.pytorch.loggers import Logger
    from torchvision.transforms import v2

    schedulers = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    return {
        "albumentations": lambda obj: isinstance(obj, type) and issubclass(obj, A.BasicTransform),
        "torchvision.transforms.v2": lambda obj: isinstance(obj, type) and issubclass(obj, v2.Transform),
        "torch.optim": lambda obj: isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer),
        "torch.optim.lr_scheduler": lambda obj: isinstance(obj, type) and issubclass(obj, schedulers),
        "lightning.pytorch.loggers": lambda obj: isinstance(obj, type) and issubclass(obj, Logger),
    }


def targets_in(node: Any) -> Iterator[tuple[str, Any]]:
    """(dotted key, target) for every ``_target_`` in a nested dict/list."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield "_target_", value
            else:
                yield from ((f"{key}.{path}", target) for path, target in targets_in(value))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from ((f"{index}.{path}", target) for path, target in targets_in(value))


@functools.cache
def config_targets(config_dir: Path) -> frozenset[str]:
    """Every ``_target_`` the project's own config files name (outside Hydra's and the sweepers' groups)."""
    found = set()
    for file in config_dir.rglob("*.yaml"):
        if file.relative_to(config_dir).parts[0] in _UNUSED_GROUPS:
            continue
        found.update(target for _, target in targets_in(yaml.safe_load(file.read_text())))
    return frozenset(target for target in found if isinstance(target, str))


def is_trusted(target: Any, config_dir: Path) -> bool:
    if not isinstance(target, str):
        return False
    if target in config_targets(config_dir):
        return True
    module, _, name = target.rpartition(".")
    test = _families().get(module)
    if test is None or not name.isidentifier() or name.startswith("_"):
        return False
    import importlib

    return test(getattr(importlib.import_module(module), name, None))


def check_stored_config(config: DictConfig, source: str | Path, config_dir: Path) -> None:
    """Raise, naming the file and the key, if a stored config names a target this project would not build."""
    plain = OmegaConf.to_container(config, resolve=False)
    for key, target in targets_in(plain):
        if not is_trusted(target, config_dir):
            raise ValueError(
                f"{source}: its stored config names {key}={target!r}, which fer_lightning does not build from a file "
                "(allowed: the targets of its own configs, albumentations and torchvision v2 transforms, torch "
                "optimizers and schedulers); nothing was built"
            )
