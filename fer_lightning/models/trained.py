"""The trained model a checkpoint holds, loaded for inference: eval, predict, export and the Python API go through
here, so a checkpoint (a file, ``last``, or none: the released default model) gives the same model everywhere."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from fer_lightning.core import runs
from fer_lightning.core.checkpoints import MEMBERS_KEY, TEMPERATURE_KEY, read_checkpoint, trusted_config
from fer_lightning.core.hardware import inference_autocast
from fer_lightning.models.classifier import EmotionClassifier


@dataclass(frozen=True)
class LoadedCheckpoint:
    """The trained module (eval mode), its config, and what it needs at inference."""

    path: Path
    config: DictConfig
    model: EmotionClassifier
    temperature: float = 1.0  # fitted on val by eval.calibrate=true; 1: the model's own probabilities
    members: tuple[str, ...] = ()  # an ensemble's member checkpoints, as written when it was made (for its card)

    @classmethod
    def load(
        cls, ckpt_path: str | Path | None, root: str | Path = "outputs", device: str | None = None
    ) -> LoadedCheckpoint:
        """The model on ``device`` (None: the GPU when there is one, else the CPU), in eval mode, in float32 (a
        half-precision file too)."""
        path = runs.find_checkpoint(ckpt_path, root)
        checkpoint = read_checkpoint(path)
        cfg = trusted_config(checkpoint, path)
        # The weights come from the checkpoint: never ask the network for ImageNet weights again; a distilled model's
        # teacher is not needed to run it.
        model = instantiate(cfg.model, pretrained=False, weights_path=None, teacher=None)
        try:
            model.load_state_dict(checkpoint["state_dict"])  # copies into the float32 parameters
        except RuntimeError as error:  # "Error(s) in loading state_dict ...:" then one line per mismatch
            details = "; ".join(line.strip() for line in str(error).splitlines()[1:3] if line.strip())
            raise ValueError(
                f"ckpt_path={path} does not fit the model its config describes: {details or error}"
            ) from error
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        members = checkpoint.get(MEMBERS_KEY, [])
        if not isinstance(members, list) or not all(isinstance(member, str) for member in members):
            raise ValueError(f"ckpt_path={path}: {MEMBERS_KEY} holds {members!r}, expected a list of file names")
        temperature = float(checkpoint.get(TEMPERATURE_KEY, 1.0))
        return cls(path, cfg, model.to(device).eval(), temperature, tuple(members))

    @property
    def is_default_model(self) -> bool:
        return self.path.resolve() == runs.DEFAULT_MODEL.resolve()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def crop_size(self) -> int | None:
        """The side of the crops the net was trained on, or None (whole faces)."""
        return self.config.data.get("crop_size")

    def autocast(self, device: torch.device | str | None = None) -> AbstractContextManager:
        """bf16 autocast when it trained in bf16-mixed and the device computes bf16 natively, else fp32."""
        return inference_autocast(self.config.trainer.precision, device or self.device)
