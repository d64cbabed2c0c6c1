"""The same faces written in both real formats: Kaggle's CSV and the image-folder re-upload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fer_lightning.core.classes import EMOTIONS


def random_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, len(EMOTIONS), n)


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, usages: list[str]) -> Path:
    lines = ["emotion,pixels,Usage"]
    lines += [f"{y},{' '.join(map(str, im.ravel()))},{u}" for im, y, u in zip(images, labels, usages)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_folders(root: Path, images: np.ndarray, labels: np.ndarray, usages: list[str]) -> Path:
    """PNG (lossless), so both formats decode to the very same pixels; names keep the CSV origin."""
    for row, (image, label, usage) in enumerate(zip(images, labels, usages)):
        split = "train" if usage == "Training" else "test"
        folder = root / split / EMOTIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{usage}_{row}.png")
    return root
