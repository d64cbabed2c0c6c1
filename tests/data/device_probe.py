"""A callback the device-path DDP test puts into a training command: each process writes the faces it trained."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class WriteShard(L.Callback):
    """``<folder>/shard_<rank>.json``: the train indices this process's sampler hands out in its first epoch."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.train_dataloader
        indices = [int(i) for batch in loader.batch_sampler for i in batch]
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"shard_{trainer.global_rank}.json").write_text(json.dumps(indices))
