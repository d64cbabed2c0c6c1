"""Train/val/test assignment that never selects on the split it reports.

CSV Usage (or the folder file-name prefix) decides when both held-out groups are present:
PublicTest -> val, PrivateTest -> test. When only one held-out group exists (the common folder
re-upload holds PublicTest alone), it stays the test split and val is carved from Training.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.data.readers import FaceRecords

SPLITS = ("train", "val", "test")


def assign_splits(records: FaceRecords, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of train, val and test in ``records``."""
    origins = records.origins
    train_mask = origins == "Training"
    held_out = sorted(set(origins[~train_mask]))
    if {"PublicTest", "PrivateTest"} <= set(held_out):
        return {
            "train": np.flatnonzero(train_mask),
            "val": np.flatnonzero(origins == "PublicTest"),
            "test": np.flatnonzero(origins == "PrivateTest"),
        }
    # A lone "train" folder without file-name prefixes is Training too.
    train_mask |= origins == "train"
    train_idx = np.flatnonzero(train_mask)
    val_idx = stratified_holdout(records.images[train_idx], records.labels[train_idx], val_fraction, seed)
    is_val = np.zeros(len(train_idx), bool)
    is_val[val_idx] = True
    return {"train": train_idx[~is_val], "val": train_idx[is_val], "test": np.flatnonzero(~train_mask)}


def stratified_holdout(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of each class, chosen by a hash of the pixels.

    Ranking by content rather than by row position gives the same split whatever order or
    format (CSV or folders) the faces were read in. ``fraction`` in [0, 1) (FERDataModule checks data.val_fraction).
    """
    salt = seed.to_bytes(8, "little", signed=True)
    keys = np.array(
        [
            int.from_bytes(hashlib.blake2b(im.tobytes(), digest_size=8, salt=salt[:8]).digest(), "little")
            for im in images
        ],
        dtype=np.uint64,
    )
    chosen = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(labels == label)
        ranked = members[np.argsort(keys[members], kind="stable")]
        chosen.append(ranked[: round(fraction * len(members))])
    return np.sort(np.concatenate(chosen))


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded permutation that spreads every class evenly along the order.

    Val and test are read class by class; a run limited to the first batches (``limit_val_batches``, ``debug=limit``)
    would see one class. Here each face is placed at (its random rank within its class + a random offset) / class
    size, so any prefix holds the classes in about their shares, and the whole split is the same set of faces.
    """
    rng = np.random.default_rng([seed, 7])
    keys = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keys[members] = (rng.permutation(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(keys, kind="stable")


def split_table(labels: dict[str, np.ndarray]) -> pd.DataFrame:
    """Images per class and split: rows are EMOTIONS in canonical order, plus a total."""
    table = pd.DataFrame(
        {split: np.bincount(y, minlength=NUM_CLASSES) for split, y in labels.items()}, index=list(EMOTIONS)
    )
    table.loc["total"] = table.sum()
    return table
