"""A callback the interrupt tests put into a training command: it holds a stage open until a signal arrives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L


class WaitForSignal(L.Callback):
    """At the second batch of ``stage`` (train, validate or test; never the sanity check), writes ``marker`` and waits
    there, up to a minute, for the test to send its signal: the signal then lands inside that stage, workers busy."""

    def __init__(self, stage: str, marker: str) -> None:
        self.stage, self.marker, self.waited = stage, Path(marker), False

    def wait(self, trainer: L.Trainer, stage: str, batch_idx: int) -> None:
        if self.waited or stage != self.stage or batch_idx != 1 or trainer.sanity_checking:
            return
        self.waited = True
        self.marker.write_text("here")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not trainer.received_sigterm:  # Ctrl-C raises inside sleep
            time.sleep(0.05)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.wait(trainer, "train", batch_idx)

    def on_validation_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.wait(trainer, "validate", batch_idx)

    def on_test_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self.wait(trainer, "test", batch_idx)
