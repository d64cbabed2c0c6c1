"""Resuming a training run in its own folder: ``ckpt_path=<file>`` or ``ckpt_path=last`` (core/runs.py finds it)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fer_lightning.core.checkpoints import read_checkpoint, trusted_config
from fer_lightning.core.runs import find_checkpoint


def resume_point(ckpt_path: str, root: str, net: str) -> tuple[Path, int]:
    """``resume_state`` without the shapes."""
    path, epoch, _ = resume_state(ckpt_path, root, net)
    return path, epoch


def resume_state(ckpt_path: str, root: str, net: str) -> tuple[Path, int, dict[str, tuple[int, ...]]]:
    """The checkpoint to resume from, and the first epoch the resumed run may log again (metrics are drawn
    against the epoch and flushed at its end, so an interrupted run logged nothing after its checkpoint's
    epoch). A file that is not a checkpoint, or one of another model (which would fail deep inside
    load_state_dict), is named in one line. Also the shape of each weight the checkpoint holds (``check_shapes``)."""
    path = find_checkpoint(ckpt_path, root, net)
    checkpoint = read_checkpoint(path)
    trained = trusted_config(checkpoint, path).model.net._target_
    if trained != net:
        raise ValueError(
            f"ckpt_path={path} holds a {trained} model, but this run builds {net}: "
            "give the overrides the checkpoint was trained with"
        )
    shapes = {
        key: tuple(value.shape) for key, value in checkpoint.get("state_dict", {}).items() if hasattr(value, "shape")
    }
    return path, int(checkpoint.get("epoch", 0)) + 1, shapes


def check_shapes(path: Path, shapes: dict[str, tuple[int, ...]], model: nn.Module) -> None:
    """A checkpoint of the same net built with other sizes (``model.net.channels``, ``dense``...) named in one line
    with the first weight whose shape differs, before anything is fitted or written (load_state_dict would fail
    deep inside Lightning, in a 90-line traceback, after the run's loggers made their files)."""
    for key, value in model.state_dict().items():
        stored = shapes.get(key)
        if stored is not None and stored != tuple(value.shape):
            raise ValueError(
                f"ckpt_path={path} does not fit this run's model: {key} is {list(stored)} in the checkpoint but "
                f"{list(value.shape)} here; give the model.net overrides the checkpoint was trained with"
            )
