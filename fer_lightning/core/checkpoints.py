"""Checkpoint files: written whole or not at all, read with any failure named in one line, their stored config
upgraded to today's import paths (core/legacy.py) and trusted only once every target in it is one this project builds
(core/trusted_targets.py). A checkpoint may also hold a temperature fitted on val (``eval.calibrate=true``) that
predict and export apply to their probabilities. The model a checkpoint holds is loaded by models/trained.py."""

from __future__ import annotations

import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.files import write_atomically
from fer_lightning.core.legacy import upgrade_config
from fer_lightning.core.trusted_targets import check_stored_config

CONFIG_KEY = "fer_lightning_config"
TEMPERATURE_KEY = "fer_lightning_temperature"
DATA_ROOT_DEFAULT = "${oc.env:FER_DATA_ROOT,data/fer2013}"  # conf/data/fer2013.yaml's root, for compact files


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a quota): the files already there are whole."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written beside their final name, synced, then renamed over it (core/files.py; conf/trainer: plugins).

    Lightning's own save streams into the final name (fsspec's "atomic" save is not, across filesystems):
    a full disk leaves a truncated .ckpt that a later resume trips on, and a failed last.ckpt replaces the
    good one. Here the previous file stays until the new one is complete.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        path = Path(path)

        def write(partial: Path) -> None:
            with partial.open("wb") as file:
                torch.save(checkpoint, file)

        try:
            write_atomically(path, write)
        except (OSError, RuntimeError) as error:  # torch's zip writer reports a failed write as a RuntimeError
            free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
            reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
            raise CheckpointWriteError(
                f"could not write checkpoint {path.name} in {path.parent} ({free:,} bytes free): {reason}; "
                "the checkpoints already there are whole (free space, then resume with ckpt_path=last)"
            ) from None


def save_whole(checkpoint: dict[str, Any], path: Path) -> None:
    """A checkpoint dict written atomically (a crash leaves the old file whole)."""
    AtomicCheckpointIO().save_checkpoint(checkpoint, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load`` (weights only) with any failure named in one line with the file; the stored config with the
    import paths of this version (core/legacy.py)."""
    if path.is_dir():
        raise IsADirectoryError(f"ckpt_path={path} is a directory, not a checkpoint file")
    try:
        with path.open("rb") as file:
            start = file.read(4)
    except OSError as error:
        raise ValueError(f"ckpt_path={path} could not be read: {error.strerror or error}") from None
    if start[:2] != b"PK" and start[:1] != b"\x80":  # torch.save writes a zip archive (a pickle before torch 1.6)
        kind = "it is empty" if not start else "it is text" if _is_text(path) else "unknown content"
        raise ValueError(
            f"ckpt_path={path} is not a readable checkpoint ({kind}): expected a .ckpt file written by torch.save"
        )
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol warning is about its loader, not this file
            warnings.simplefilter("ignore", UserWarning)
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises weights_only=False, which would run whatever the file holds: never relayed.
        raise ValueError(
            f"ckpt_path={path} is not a readable checkpoint: it holds objects a weights-only load "
            "refuses (only tensors and plain values are loaded); nothing in it was run"
        ) from None
    except Exception as error:  # torch reports a damaged file as any of many errors (KeyError, RuntimeError, ...)
        reason = str(error).splitlines()[0] if str(error) else ""
        if "weights_only" in reason:
            reason = ""
        raise ValueError(
            f"ckpt_path={path} is not a readable checkpoint (truncated, or not written by torch.save): "
            f"{type(error).__name__}{': ' + reason if reason else ''}"
        ) from None
    if not isinstance(checkpoint, dict) or CONFIG_KEY not in checkpoint:
        raise ValueError(
            f"ckpt_path={path} holds no fer-lightning config: not a checkpoint written by fer_lightning.train"
        )
    checkpoint[CONFIG_KEY] = upgrade_config(checkpoint[CONFIG_KEY])  # written before the move: today's import paths
    return checkpoint


def _is_text(path: Path) -> bool:
    try:
        path.read_bytes()[:4096].decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return True


def trusted_config(checkpoint: dict[str, Any], path: Path) -> DictConfig:
    """The stored config of a checkpoint read by ``read_checkpoint``, once every ``_target_`` that eval, predict,
    export and resume would build from it (the model and data sections) is one this project builds
    (core/trusted_targets.py): a checkpoint never runs code."""
    cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
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
    checkpoint = read_checkpoint(path)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    config = dict(checkpoint[CONFIG_KEY])
    # A file meant to travel: eval reads data where the user keeps it, not where the training machine did.
    config["data"] = {**config["data"], "root": DATA_ROOT_DEFAULT}
    return {
        CONFIG_KEY: config,
        TEMPERATURE_KEY: checkpoint.get(TEMPERATURE_KEY, 1.0),
        "classes": list(EMOTIONS),
        "state_dict": weights,
    }
