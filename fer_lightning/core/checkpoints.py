"""Checkpoint files: written whole or not at all, read with any failure named in one line, their stored config
upgraded to today's import paths (core/legacy.py) and trusted only once every target in it is one this project builds
(core/trusted_targets.py). A checkpoint may also hold a temperature fitted on val (``eval.calibrate=true``) that
predict and export apply to their probabilities. The model a checkpoint holds is loaded by models/trained.py."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import CheckpointWriteError
from fer_lightning.core.files import write_atomically
from fer_lightning.core.legacy import upgrade_config
from fer_lightning.core.trusted_targets import check_stored_config

CONFIG_KEY = "fer_lightning_config"
TEMPERATURE_KEY = "fer_lightning_temperature"
INT8_SCALES_KEY = "fer_lightning_int8_scales"  # a compact file's int8 weights: key -> one float32 scale per row
MEMBERS_KEY = "fer_lightning_members"  # an ensemble's member checkpoints (models/ensemble.py), kept for its card
WEIGHT_DTYPES = ("float16", "int8")  # compact_checkpoint's storage for the weights
DATA_ROOT_DEFAULT = "${oc.env:FER_DATA_ROOT,data/fer2013}"  # conf/data/fer2013.yaml's root, for compact files


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


def read_checkpoint(path: Path, int8: bool = False) -> dict[str, Any]:
    """``torch.load`` (weights only) with any failure named in one line with the file; the stored config with the
    import paths of this version (core/legacy.py); int8 weights in float32 (``int8=True``: as stored, to rewrite the
    file as it was)."""
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
        if _is_torchscript(path):
            raise ValueError(
                f"ckpt_path={path} is a TorchScript export, not a checkpoint: run it with torch.jit.load; eval, "
                "predict and export take the .ckpt it was exported from"
            ) from None
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
    if not isinstance(checkpoint.get("state_dict"), dict):
        found = type(checkpoint["state_dict"]).__name__ if "state_dict" in checkpoint else "nothing"
        raise ValueError(f"ckpt_path={path} holds {found} under state_dict, expected the model's weights (a dict)")
    checkpoint[CONFIG_KEY] = upgrade_config(checkpoint[CONFIG_KEY])  # written before the move: today's import paths
    if INT8_SCALES_KEY in checkpoint and not int8:
        checkpoint["state_dict"] = dequantize(checkpoint["state_dict"], checkpoint.pop(INT8_SCALES_KEY), path)
    return checkpoint


def _is_torchscript(path: Path) -> bool:
    """A zip archive with TorchScript's code/ folder (torch.jit.save), read by its table of contents only."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _is_text(path: Path) -> bool:
    try:
        path.read_bytes()[:4096].decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return True


def trusted_config(checkpoint: dict[str, Any], path: Path) -> DictConfig:
    """The stored config of a checkpoint read by ``read_checkpoint``, as data: a checkpoint never runs code.

    ``instantiate()`` resolves ``${...}`` before it builds, so an interpolation or resolver in a stored config could
    reach any key (or ``oc.create`` a new ``_target_``) after the targets were checked. The configs this project
    stores are resolved when they are written, so no ``${...}`` is evaluated: one is refused (the data root of a
    compact file, the only one the project writes, is read here, without a resolver). Then every ``_target_`` that
    eval, predict, export and resume build (the model and data sections) must be one this project builds
    (core/trusted_targets.py)."""
    stored = checkpoint[CONFIG_KEY]
    if not isinstance(stored, dict) or not all(isinstance(stored.get(key), dict) for key in ("model", "data")):
        raise ValueError(
            f"ckpt_path={path}: its stored config ({CONFIG_KEY}) is a {type(stored).__name__} without model and data "
            "sections, expected the mapping fer_lightning.train stores"
        )
    if stored["data"].get("root") == DATA_ROOT_DEFAULT:
        stored = {**stored, "data": {**stored["data"], "root": os.environ.get("FER_DATA_ROOT", "data/fer2013")}}
    for key, value in strings_in(stored):
        if "${" in value:
            raise ValueError(
                f"ckpt_path={path}: its stored config holds the interpolation {key}={value!r}; a stored config is data "
                "and no interpolation or resolver in it is evaluated (fer_lightning stores configs resolved); "
                "nothing was built"
            )
    cfg = OmegaConf.create(stored)
    check_stored_config(OmegaConf.masked_copy(cfg, ["model", "data"]), f"ckpt_path={path}", CONFIG_DIR)
    return cfg


def strings_in(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) for every string in a nested dict/list, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield f"{prefix}{key} (a key)", key
            yield from strings_in(value, f"{prefix}{key}.")
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from strings_in(value, f"{prefix}{index}.")
    elif isinstance(node, str):
        yield prefix.rstrip("."), node


def store_temperature(path: Path, temperature: float) -> None:
    """Keep a temperature fitted on val in the checkpoint file itself, for predict and export to apply."""
    checkpoint = read_checkpoint(path, int8=True)  # an int8 file stays int8
    checkpoint[TEMPERATURE_KEY] = float(temperature)
    save_whole(checkpoint, path)


def compact_checkpoint(path: Path, weights: str = "float16") -> dict[str, Any]:
    """What serving a checkpoint needs and nothing else: its config, class names, temperature, an ensemble's member
    list, and the weights in ``weights`` storage (a 1.4 M parameter CNN: 2.8 MB in float16, 1.5 MB in int8, instead of
    17 MB with optimizer states). int8 keeps the weight of every conv and Dense layer as int8 with one scale per
    output channel, the rest in float16; read_checkpoint gives float weights back."""
    check_weight_storage(weights)
    checkpoint = read_checkpoint(path)
    state, scales = {}, {}
    for key, value in checkpoint["state_dict"].items():
        if weights == "int8" and value.is_floating_point() and value.ndim >= 2 and key.endswith(".weight"):
            state[key], scales[key] = quantize_int8(value)
        else:
            state[key] = value.half() if value.is_floating_point() else value
    config = dict(checkpoint[CONFIG_KEY])
    # A file meant to travel: eval reads data where the user keeps it, not where the training machine did.
    config["data"] = {**config["data"], "root": DATA_ROOT_DEFAULT}
    compact = {
        CONFIG_KEY: config,
        TEMPERATURE_KEY: checkpoint.get(TEMPERATURE_KEY, 1.0),
        "classes": list(EMOTIONS),
        "state_dict": state,
    }
    if MEMBERS_KEY in checkpoint:
        compact[MEMBERS_KEY] = checkpoint[MEMBERS_KEY]
    return {**compact, INT8_SCALES_KEY: scales} if scales else compact


def check_weight_storage(weights: str) -> None:
    """``export.weights`` named in one line unless it is a storage compact_checkpoint writes."""
    if weights not in WEIGHT_DTYPES:
        raise ValueError(f"export.weights={weights!r}: expected one of {', '.join(WEIGHT_DTYPES)}")


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight, float32 scale per output channel): symmetric, so a weight is off by at most half its channel's
    largest magnitude / 127."""
    largest = weight.detach().float().abs().amax(dim=tuple(range(1, weight.ndim)))
    scale = torch.where(largest > 0, largest / 127, torch.ones_like(largest))
    rows = scale.view(-1, *[1] * (weight.ndim - 1))
    return (weight.float() / rows).round().clamp(-127, 127).to(torch.int8), scale


def dequantize(state: dict[str, Any], scales: Any, path: Path) -> dict[str, Any]:
    """A compact file's int8 weights back in float32, each int8 tensor checked against its scale."""
    if not isinstance(scales, dict):
        raise ValueError(f"ckpt_path={path}: {INT8_SCALES_KEY} is a {type(scales).__name__}, expected a dict of scales")
    state = dict(state)
    for key, scale in scales.items():
        weight = state.get(key)
        if not (isinstance(weight, torch.Tensor) and isinstance(scale, torch.Tensor)) or weight.dtype != torch.int8:
            raise ValueError(f"ckpt_path={path}: int8 scale for state_dict[{key!r}], which is not an int8 weight")
        if scale.ndim != 1 or len(scale) != weight.shape[0]:
            raise ValueError(
                f"ckpt_path={path}: state_dict[{key!r}] has {weight.shape[0]} output channels, "
                f"its int8 scale {list(scale.shape)}: expected one scale per channel"
            )
        state[key] = weight.float() * scale.float().view(-1, *[1] * (weight.ndim - 1))
    unscaled = [key for key, value in state.items() if isinstance(value, torch.Tensor) and value.dtype == torch.int8]
    if unscaled:
        raise ValueError(f"ckpt_path={path}: state_dict[{unscaled[0]!r}] is int8 without a scale in {INT8_SCALES_KEY}")
    return state
