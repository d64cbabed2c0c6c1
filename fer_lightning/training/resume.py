"""Resuming a training run in its own folder: ``ckpt_path=<file>`` or ``ckpt_path=last`` (core/runs.py finds it)."""

from __future__ import annotations

from pathlib import Path

from fer_lightning.core.checkpoints import read_checkpoint, trusted_config
from fer_lightning.core.runs import find_checkpoint


def resume_point(ckpt_path: str, root: str, net: str) -> tuple[Path, int]:
    """The checkpoint to resume from, and the first epoch the resumed run may log again (metrics are drawn
    against the epoch and flushed at its end, so an interrupted run logged nothing after its checkpoint's
    epoch). A file that is not a checkpoint, or one of another model (which would fail deep inside
    load_state_dict), is named in one line."""
    path = find_checkpoint(ckpt_path, root, net)
    checkpoint = read_checkpoint(path)
    trained = trusted_config(checkpoint, path).model.net._target_
    if trained != net:
        raise ValueError(
            f"ckpt_path={path} holds a {trained} model, but this run builds {net}: "
            "give the overrides the checkpoint was trained with"
        )
    return path, int(checkpoint.get("epoch", 0)) + 1
