"""Where runs live, and resuming one in its own folder: ``ckpt_path=<file>`` or ``ckpt_path=last``."""

from __future__ import annotations

from pathlib import Path

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


def check_resumable(path: Path, net_target: str) -> None:
    """A checkpoint of another model would fail deep inside load_state_dict; say it in one line instead."""
    import torch

    from fer_lightning.checkpoints import CONFIG_KEY  # torch-heavy: imported only when resuming

    stored = torch.load(path, map_location="cpu", weights_only=True).get(CONFIG_KEY)
    trained = stored and stored["model"]["net"]["_target_"]
    if trained and trained != net_target:
        raise ValueError(f"ckpt_path={path} holds a {trained} model, but this run builds {net_target}: "
                         "give the overrides the checkpoint was trained with")


def run_dir(ckpt_path: str | None, fresh: str) -> str:
    """The folder a training run writes to: a resumed checkpoint's own run (same TensorBoard run,
    same checkpoints), else a fresh one. Used as ``${run_dir:${ckpt_path},...}`` in conf/hydra/train.yaml."""
    return str(find_checkpoint(ckpt_path).parent.parent) if ckpt_path else fresh

