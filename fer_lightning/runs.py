"""Where runs live, and resuming one in its own folder: ``ckpt_path=<file>`` or ``ckpt_path=last``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

OUTPUTS = Path("outputs")


def find_checkpoint(ckpt_path: str) -> Path:
    """A checkpoint file; ``last`` is the newest ``checkpoints/last.ckpt`` of any run under outputs/."""
    if ckpt_path == "last":
        candidates = list(OUTPUTS.glob("**/checkpoints/last.ckpt"))
        if not candidates:
            raise FileNotFoundError(f"ckpt_path=last: no run under {OUTPUTS.resolve()} has checkpoints/last.ckpt")
        return max(candidates, key=lambda p: p.stat().st_mtime)
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    return path


def run_dir(ckpt_path: str | None, fresh: str) -> str:
    """The folder a training run writes to: a resumed checkpoint's own run (same TensorBoard run,
    same checkpoints), else a fresh one. Used as ``${run_dir:${ckpt_path},...}`` in conf/hydra/train.yaml."""
    return str(find_checkpoint(ckpt_path).parent.parent) if ckpt_path else fresh


OmegaConf.register_new_resolver("run_dir", run_dir, replace=True)
