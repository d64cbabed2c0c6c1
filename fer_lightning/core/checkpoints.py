"""A checkpoint file read once: the model it holds, the config it was trained with, and how to feed it.

eval, predict, export and resume all go through here, so ``ckpt_path`` (a file, ``last``, or not given: the
released default model) means the same everywhere, and a file that is not a readable checkpoint is named in one
line. A checkpoint may also hold a temperature fitted on val (``eval.calibrate=true``) that predict and export
apply to their probabilities.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from hydra.utils import instantiate
from lightning.fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.legacy import current_target, upgrade_config

if TYPE_CHECKING:
    import albumentations as A

CONFIG_KEY = "fer_lightning_config"
TEMPERATURE_KEY = "fer_lightning_temperature"
# The released default model (fer_lightning/weights/README.md: its card): used when ckpt_path is not given.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "weights" / "fer2013_scratch_best.pt"
DATA_ROOT_DEFAULT = "${oc.env:FER_DATA_ROOT,data/fer2013}"  # conf/data/fer2013.yaml's root, for compact files

log = logging.getLogger(__name__)


def run_checkpoints(root: str | Path) -> Iterator[Path]:
    """Every ``<run>/checkpoints/last.ckpt`` of a training run under ``root`` (runs and sweep jobs)."""
    yield from Path(root).expanduser().glob("train/**/checkpoints/last.ckpt")


def trained_net(run_checkpoint: Path) -> str | None:
    """The net a run trained, from its .hydra/config.yaml (cheap: no checkpoint is opened)."""
    config = run_checkpoint.parent.parent / ".hydra" / "config.yaml"
    try:
        return current_target(yaml.safe_load(config.read_text())["model"]["net"]["_target_"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def default_model() -> Path:
    """The released default model, said in one log line, or one line on what to give instead."""
    if not DEFAULT_MODEL.is_file():
        raise FileNotFoundError(f"ckpt_path not given and this install has no released default model ({DEFAULT_MODEL}): "
                                "give ckpt_path=<file.ckpt> or ckpt_path=last")
    log.info("ckpt_path not given: using the released default model %s (card: %s)", DEFAULT_MODEL,
             DEFAULT_MODEL.with_name("README.md"))
    return DEFAULT_MODEL


def find_checkpoint(ckpt_path: str | Path | None, root: str | Path = "outputs", net: str | None = None) -> Path:
    """A checkpoint file; ``last`` is the newest training run's ``checkpoints/last.ckpt`` under ``root``
    (the configured outputs folder), of the same net when ``net`` is given; None is the released default model."""
    if ckpt_path is None:
        return default_model()
    if str(ckpt_path) != "last":
        path = Path(ckpt_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
        return path
    found = list(run_checkpoints(root))
    matching = [p for p in found if net is None or trained_net(p) == net]
    if not matching:
        others = "".join(f"\n  {p} ({trained_net(p) or 'unknown net'})" for p in sorted(found)[-10:])
        wanted = f" of a {net} model" if net else ""
        raise FileNotFoundError(f"ckpt_path=last: no training run{wanted} under {Path(root).resolve()} has "
                                f"checkpoints/last.ckpt{'; the others:' + others if others else ''}")
    return max(matching, key=lambda p: p.stat().st_mtime)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a quota): the files already there are whole."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written beside their final name, synced, then renamed over it (conf/trainer: plugins).

    Lightning's own save streams into the final name (fsspec's "atomic" save is not, across filesystems):
    a full disk leaves a truncated .ckpt that a later resume trips on, and a failed last.ckpt replaces the
    good one. Here the previous file stays until the new one is complete.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        path = Path(path)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        except (OSError, RuntimeError) as error:  # torch's zip writer reports a failed write as a RuntimeError
            partial.unlink(missing_ok=True)
            free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
            raise CheckpointWriteError(
                f"could not write checkpoint {path.name} in {path.parent} ({free:,} bytes free): {reason}; "
                "the checkpoints already there are whole (free space, then resume with ckpt_path=last)"
            ) from None
        finally:
            partial.unlink(missing_ok=True)


def save_whole(checkpoint: dict[str, Any], path: Path) -> None:
    """A checkpoint dict written atomically (a crash leaves the old file whole)."""
    AtomicCheckpointIO().save_checkpoint(checkpoint, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load`` (weights only) with any failure named in one line with the file; the stored config with the
    import paths of this version (core/legacy.py)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise ValueError(f"ckpt_path={path} is not a readable checkpoint (truncated, or not written by torch.save): "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        raise ValueError(f"ckpt_path={path} holds no fer-lightning config: not a checkpoint written by fer_lightning.train")
    checkpoint[CONFIG_KEY] = upgrade_config(checkpoint[CONFIG_KEY])  # written before the move: today's import paths
    return checkpoint


def trusted_config(cfg: DictConfig, path: Path) -> DictConfig:
    """The stored config, once every ``_target_`` that eval, predict and export would build from it (the model and
    data sections) is one this project builds (fer_lightning/trusted_targets.py): a checkpoint never runs code."""
    from fer_lightning.core.config import CONFIG_DIR
    from fer_lightning.core.trusted_targets import check_stored_config

    built = OmegaConf.masked_copy(cfg, ["model", "data"])
    check_stored_config(built, f"ckpt_path={path}", CONFIG_DIR)
    return cfg


def store_temperature(path: Path, temperature: float) -> None:
    """Keep a temperature fitted on val in the checkpoint file itself, for predict and export to apply."""
    checkpoint = read_checkpoint(path)
    checkpoint[TEMPERATURE_KEY] = float(temperature)
    save_whole(checkpoint, path)


def compact_checkpoint(path: Path) -> dict[str, Any]:
    """What serving a checkpoint needs and nothing else: its config, class names, temperature and the weights in
    half precision (a 1.4 M parameter CNN: 2.8 MB instead of 17 MB with optimizer and EMA states)."""
    from fer_lightning.core.classes import EMOTIONS

    checkpoint = read_checkpoint(path)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    config = dict(checkpoint[CONFIG_KEY])
    # A file meant to travel: eval reads data where the user keeps it, not where the training machine did.
    config["data"] = {**config["data"], "root": DATA_ROOT_DEFAULT}
    return {CONFIG_KEY: config, TEMPERATURE_KEY: checkpoint.get(TEMPERATURE_KEY, 1.0), "classes": list(EMOTIONS),
            "state_dict": weights}


@dataclass(frozen=True)
class LoadedCheckpoint:
    """The trained module (eval mode, on CPU), its config, and what it needs at inference."""

    path: Path
    config: DictConfig
    model: Any  # EmotionClassifier: imported lazily, the resolvers in config.py need this module light
    temperature: float = 1.0  # fitted on val by eval.calibrate=true; 1: the model's own probabilities

    @classmethod
    def load(cls, ckpt_path: str | Path | None, root: str | Path = "outputs", device: str | None = None) -> LoadedCheckpoint:
        """The model on ``device`` (None: the GPU when there is one, else the CPU), in eval mode, in float32 (a
        half-precision file too)."""
        path = find_checkpoint(ckpt_path, root)
        checkpoint = read_checkpoint(path)
        cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
        trusted_config(cfg, path)
        # The weights come from the checkpoint: never ask the network for ImageNet weights again.
        model = instantiate(cfg.model, pretrained=False, weights_path=None)
        try:
            model.load_state_dict(checkpoint["state_dict"])  # copies into the float32 parameters
        except RuntimeError as error:
            raise ValueError(f"ckpt_path={path} does not fit the model its config describes: {error}") from error
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(path, cfg, model.to(device).eval(), float(checkpoint.get(TEMPERATURE_KEY, 1.0)))

    @property
    def is_default_model(self) -> bool:
        return self.path.resolve() == DEFAULT_MODEL.resolve()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def crop_size(self) -> int | None:
        """The side of the crops the net was trained on, or None (whole faces)."""
        return self.config.data.get("crop_size")

    def autocast(self, device: torch.device | str | None = None) -> AbstractContextManager:
        """bf16 autocast when it trained in bf16-mixed and the device computes bf16 natively, else fp32."""
        from fer_lightning.core.hardware import inference_autocast

        return inference_autocast(self.config.trainer.precision, device or self.device)

    def transform(self, whole: bool = False) -> A.Compose:
        """The eval pipeline of training: resize, centre crop (none when ``whole``, for ten-crop TTA), normalise."""
        from fer_lightning.data.transforms import build_transform

        data = self.config.data
        return build_transform(data.image_size, data.mean, data.std, (), self.crop_size, "none" if whole else "center")
