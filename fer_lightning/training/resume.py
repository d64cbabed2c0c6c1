"""Resuming a training run in its own folder: ``ckpt_path=<file>`` or ``ckpt_path=last`` (core/runs.py finds it)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

from fer_lightning.core.checkpoints import read_checkpoint, trusted_config
from fer_lightning.core.runs import find_checkpoint

log = logging.getLogger(__name__)


def resume_state(ckpt_path: str, root: str, net: str) -> tuple[Path, int, dict[str, tuple[int, ...]]]:
    """The checkpoint to resume from, and the first epoch the resumed run may log again (metrics are drawn
    against the epoch and flushed at its end, so an interrupted run logged nothing after its checkpoint's
    epoch). A file that is not a checkpoint, or one of another model (which would fail deep inside
    load_state_dict), is named in one line. Also the shape of each weight the checkpoint holds (``check_shapes``)."""
    path = find_checkpoint(ckpt_path, root, net)
    checkpoint = read_checkpoint(path)
    if "optimizer_states" not in checkpoint:
        raise ValueError(
            f"ckpt_path={path} holds weights only (a compact file or an ensemble, for eval, predict and export): a run "
            "resumes from a training checkpoint such as <run>/checkpoints/last.ckpt; to start from these weights, "
            "give model.weights_path a state dict file"
        )
    trained = trusted_config(checkpoint, path).model.net._target_
    if trained != net:
        raise ValueError(
            f"ckpt_path={path} holds a {trained} model, but this run builds {net}: "
            "give the overrides the checkpoint was trained with"
        )
    # Lightning's hpc_ckpt_<n>.ckpt is written mid-epoch by SLURM's requeue signal, and the run goes on until SLURM
    # stops it: the epoch it was in may have been logged after it, and is logged again.
    shapes = {
        key: tuple(value.shape) for key, value in checkpoint.get("state_dict", {}).items() if hasattr(value, "shape")
    }
    return path, int(checkpoint.get("epoch", 0)) + (0 if path.name.startswith("hpc_ckpt_") else 1), shapes


def requeued_checkpoint(run: Path) -> Path | None:
    """The checkpoint a requeued SLURM job goes on from: the newest in its folder (``checkpoints/last.ckpt``, which
    SIGTERM writes when SLURM stops the job, or the ``hpc_ckpt_<n>.ckpt`` Lightning saves on the requeue signal).
    None when the job was not requeued (``SLURM_RESTART_COUNT``) or saved nothing before it stopped."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if not restarts:
        return None
    saved = [p for p in (run / "checkpoints" / "last.ckpt", *run.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
    newest = max(saved, key=lambda p: p.stat().st_mtime_ns, default=None)
    log.info(
        "SLURM requeued job %s (restart %d): %s",
        os.environ.get("SLURM_JOB_ID"),
        restarts,
        f"going on from {newest}" if newest else "no checkpoint in its folder, starting over",
    )
    return newest


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
