"""Head-first fine-tuning: a frozen backbone really is frozen, BatchNorm statistics included."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info


class FreezeBackbone(L.Callback):
    """Trains only the head before epoch ``unfreeze_at_epoch``, then the whole net.

    Lightning's BackboneFinetuning keeps frozen BatchNorm layers in train mode (normalising with batch
    statistics) and adds the backbone to the optimizer mid-run, out of reach of the LR scheduler. Here
    the backbone's parameters are in the optimizer from the start, in their own group at
    ``lr * model.backbone_lr_ratio`` and scheduled like the head; while frozen they get no gradient (so
    no update, no weight decay) and the whole backbone stays in eval mode, so its BatchNorm running
    statistics are not touched.
    """

    def __init__(self, unfreeze_at_epoch: int) -> None:
        self.unfreeze_at_epoch = unfreeze_at_epoch

    def frozen(self, trainer: L.Trainer) -> bool:
        return trainer.current_epoch < self.unfreeze_at_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        frozen = self.frozen(trainer)
        pl_module.backbone.requires_grad_(not frozen)
        if not frozen:
            pl_module.backbone.train()  # it was kept in eval mode while frozen
        if trainer.current_epoch == self.unfreeze_at_epoch and trainer.current_epoch > 0:
            rank_zero_info(f"Epoch {trainer.current_epoch}: unfreezing the backbone")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int) -> None:
        # Lightning puts the module back in train mode around validation; keep the frozen backbone in eval.
        if self.frozen(trainer):
            pl_module.backbone.eval()
