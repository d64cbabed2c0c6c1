"""Resuming a training run in its own folder: ``ckpt_path=<file>`` or ``ckpt_path=last``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import OmegaConf

from fer_lightning.checkpoints import CONFIG_KEY, find_checkpoint, read_checkpoint, trusted_config

log = logging.getLogger(__name__)


def run_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/<file>`` with ``<run>/.hydra``), else None."""
    run = checkpoint.resolve().parent.parent
    return run if checkpoint.resolve().parent.name == "checkpoints" and (run / ".hydra").is_dir() else None


def run_dir(ckpt_path: str | None, root: str, net: str, fresh: str) -> str:
    """The folder a training run writes to: a resumed checkpoint's own run (same TensorBoard run, same
    checkpoints), else a fresh one; a checkpoint outside any run folder also starts a fresh one.
    Used as ``${run_dir:...}`` in conf/hydra/train.yaml."""
    if not ckpt_path:
        return fresh
    run = run_of(find_checkpoint(ckpt_path, root, net))
    return str(run) if run else fresh


def resume_point(ckpt_path: str, root: str, net: str) -> tuple[Path, int]:
    """The checkpoint to resume from, and the first epoch the resumed run may log again (metrics are drawn
    against the epoch and flushed at its end, so an interrupted run logged nothing after its checkpoint's
    epoch). A file that is not a checkpoint, or one of another model (which would fail deep inside
    load_state_dict), is named in one line."""
    path = find_checkpoint(ckpt_path, root, net)
    checkpoint = read_checkpoint(path)
    trained = trusted_config(OmegaConf.create(checkpoint[CONFIG_KEY]), path).model.net._target_
    if trained != net:
        raise ValueError(f"ckpt_path={path} holds a {trained} model, but this run builds {net}: "
                         "give the overrides the checkpoint was trained with")
    # Lightning's hpc_ckpt_<n>.ckpt is written mid-epoch by SLURM's requeue signal, and the run goes on until SLURM
    # stops it: the epoch it was in may have been logged after it, and is logged again.
    return path, int(checkpoint.get("epoch", 0)) + (0 if path.name.startswith("hpc_ckpt_") else 1)


def requeued_checkpoint(run: Path) -> Path | None:
    """The checkpoint a requeued SLURM job goes on from: the newest in its folder (``checkpoints/last.ckpt``, which
    SIGTERM writes when SLURM stops the job, or the ``hpc_ckpt_<n>.ckpt`` Lightning saves on the requeue signal).
    None when the job was not requeued (``SLURM_RESTART_COUNT``) or saved nothing before it stopped."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if not restarts:
        return None
    saved = [p for p in (run / "checkpoints" / "last.ckpt", *run.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
    newest = max(saved, key=lambda p: p.stat().st_mtime_ns, default=None)
    log.info("SLURM requeued job %s (restart %d): %s", os.environ.get("SLURM_JOB_ID"), restarts,
             f"going on from {newest}" if newest else "no checkpoint in its folder, starting over")
    return newest
