"""The datamodule's randomness: each DataLoader worker augments with its own stream; the val carve-out follows
data.split_seed, not the run's seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from fer_lightning.data.readers import FaceRecords
from tests.conftest import ON_FILES, random_faces, write_folders


def test_each_dataloader_worker_augments_differently(make_cfg) -> None:
    cfg = make_cfg("data.augment=true", "data.num_workers=2", "data.batch_size=1")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    face = datamodule.splits["train"].images[0]
    n = 8  # the same face eight times: any difference between batches is augmentation
    datamodule.splits["train"] = FaceRecords(
        np.stack([face] * n), np.zeros(n, np.int64), np.full(n, "Training"), np.array([str(i) for i in range(n)])
    )
    batches = [images for images, _ in datamodule.train_dataloader()]
    # Worker 0 makes batches 0, 2, ...; worker 1 makes 1, 3, ...: forked with one shared generator they would
    # replay the same stream, so batch 2i would equal batch 2i + 1.
    assert not all(torch.equal(batches[i], batches[i + 1]) for i in range(0, n, 2))


def test_the_val_split_stays_when_the_seed_changes(make_cfg, tmp_path: Path) -> None:
    images, labels = random_faces(120, seed=3)
    root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 100 + ["PublicTest"] * 20)
    vals = []
    for seed in (1, 2):
        datamodule = instantiate(make_cfg(f"seed={seed}", f"data.root={root}", *ON_FILES, fast=False).data)
        datamodule.setup("fit")
        vals.append(sorted(datamodule.splits["val"].sources))
    assert vals[0] == vals[1] and len(vals[0]) > 0
    datamodule = instantiate(make_cfg(f"data.root={root}", *ON_FILES, "data.split_seed=5", fast=False).data)
    datamodule.setup("fit")
    assert sorted(datamodule.splits["val"].sources) != vals[0]  # split_seed is what moves it
