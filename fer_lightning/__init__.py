"""fer-lightning: Lightning + Hydra experiments for facial emotion recognition on FER-2013."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# albumentations asks PyPI for a newer release when imported: up to 2 s and a warning on an offline machine, a request
# from every job of a sweep. Runs never depend on the network; NO_ALBUMENTATIONS_UPDATE=0 turns the check back on.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

if TYPE_CHECKING:
    from fer_lightning.serving.recognizer import EmotionRecognizer

__all__ = ["EmotionRecognizer"]


def __getattr__(name: str) -> Any:
    """``from fer_lightning import EmotionRecognizer`` imports the recognizer (OpenCV, the detectors) only when asked:
    ``import fer_lightning.train`` stays as light as it was."""
    if name == "EmotionRecognizer":
        from fer_lightning.serving.recognizer import EmotionRecognizer

        return EmotionRecognizer
    raise AttributeError(f"module 'fer_lightning' has no attribute {name!r}")
