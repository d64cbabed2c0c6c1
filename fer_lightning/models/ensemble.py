"""Several trained nets as one model: ``python -m fer_lightning.ensemble 'members=[a.ckpt,b.ckpt]'`` writes a
checkpoint whose net is the mean of theirs, so eval (TTA, calibration), predict, export and the Python API load it
like any other. The members must have been trained on the same input and val split (SHARED_DATA)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn

from fer_lightning.core import runs
from fer_lightning.core.checkpoints import (
    CONFIG_KEY,
    MEMBERS_KEY,
    TEMPERATURE_KEY,
    read_checkpoint,
    save_whole,
    trusted_config,
)
from fer_lightning.core.classes import EMOTIONS

log = logging.getLogger(__name__)

# Data keys the members must agree on: one input for all (side, crop, normalisation), and one val split, so that the
# faces eval.tta=auto and eval.calibrate choose on were trained on by no member.
SHARED_DATA = ("image_size", "crop_size", "mean", "std", "split_seed", "val_fraction", "clean")


class MeanOfNets(nn.Module):
    """The mean of the members' log-probabilities: a vector of logits, so softmax, temperature and TTA treat the
    ensemble as one net (how it compares with the mean of their probabilities: docs/results.md)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs two or more members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.input_size = getattr(members[0], "input_size", None)

    @property
    def backbone(self) -> nn.ModuleList:
        """Every member's backbone (an ensemble is built from trained nets, not fine-tuned as one)."""
        return nn.ModuleList(member.backbone for member in self.members)

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([member(x).float().log_softmax(-1) for member in self.members]).mean(0)


def mean_of_nets(
    num_classes: int,
    dropout: float,
    members: Sequence[Callable[..., nn.Module]],
    pretrained: bool = False,
    weights_path: str | None = None,
) -> MeanOfNets:
    """Build each member's net (its own ``model.net`` config); the weights come from the ensemble checkpoint."""
    if pretrained or weights_path:
        raise ValueError("an ensemble's weights come from its checkpoint: model.pretrained and weights_path stay unset")
    return MeanOfNets(
        [build(num_classes=num_classes, dropout=dropout, pretrained=False, weights_path=None) for build in members]
    )


def ensemble_checkpoint(paths: Sequence[Path], net: DictConfig) -> dict[str, Any]:
    """One checkpoint of the members' nets as ``net`` (conf/ensemble.yaml) in float32: the config of the first
    member with its ``model.net`` replaced, each member's weights under ``net.members.<i>``."""
    checkpoints = [read_checkpoint(path) for path in paths]
    configs = [trusted_config(checkpoint, path) for checkpoint, path in zip(checkpoints, paths, strict=True)]
    first = configs[0]
    for index, (path, config) in enumerate(zip(paths, configs, strict=True)):
        if config.model.net._target_ == net._target_:
            raise ValueError(f"members[{index}]={path} is itself an ensemble: give its members instead")
        for key in SHARED_DATA:
            if config.data.get(key) != first.data.get(key):
                raise ValueError(
                    f"members[{index}]={path} was trained with data.{key}={config.data.get(key)}, members[0] with "
                    f"{first.data.get(key)}: the members of an ensemble take the same input and val split"
                )
    if any(float(checkpoint.get(TEMPERATURE_KEY, 1.0)) != 1.0 for checkpoint in checkpoints):
        log.info("The members' temperatures are not carried over: fit the ensemble's own with eval.calibrate=true")
    config = OmegaConf.to_container(first)
    config["model"]["net"] = {
        **OmegaConf.to_container(net),
        "members": [OmegaConf.to_container(c.model.net) for c in configs],
    }
    if len({c.trainer.precision for c in configs}) > 1:  # inference autocast follows the precision: the safe one
        config["trainer"]["precision"] = "32-true"
    state = {key: value for key, value in checkpoints[0]["state_dict"].items() if not key.startswith("net.")}
    for index, checkpoint in enumerate(checkpoints):
        for key, value in checkpoint["state_dict"].items():
            if key.startswith("net."):
                state[f"net.members.{index}.{key.removeprefix('net.')}"] = (
                    value.float() if value.is_floating_point() else value
                )
    return {CONFIG_KEY: config, "classes": list(EMOTIONS), "state_dict": state, MEMBERS_KEY: [str(p) for p in paths]}


def member_paths(members: Any, root: str) -> list[Path]:
    """The checkpoint files of ``members`` (each a file or ``last``), each named by its index when it is wrong."""
    if not isinstance(members, ListConfig | list) or len(members) < 2:
        raise ValueError(
            f"members={members}: an ensemble needs two or more checkpoints, as a list: 'members=[a.ckpt,b.ckpt]'"
        )
    paths: list[Path] = []
    for index, member in enumerate(members):
        try:
            path = runs.find_checkpoint(member, root)
        except (FileNotFoundError, IsADirectoryError) as error:
            raise type(error)(f"members[{index}]: {error}") from None
        if path.resolve() in [p.resolve() for p in paths]:
            raise ValueError(f"members[{index}]={member} is {path}, already a member: each net once")
        paths.append(path)
    return paths


def write_ensemble(cfg: DictConfig) -> Path:
    """``python -m fer_lightning.ensemble``: the checkpoint of ``cfg.members`` as one model; return its path."""
    paths = member_paths(cfg.members, cfg.paths.root)
    checkpoint = ensemble_checkpoint(paths, cfg.net)
    file = Path(cfg.file).expanduser() if cfg.file else Path(cfg.paths.output_dir) / "ensemble.ckpt"
    file.parent.mkdir(parents=True, exist_ok=True)
    save_whole(checkpoint, file)
    log.info("Ensemble of %d members written to %s: give it as ckpt_path=", len(paths), file)
    return file
