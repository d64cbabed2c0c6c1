"""The LightningModule: loss, metrics and optimisers around any net with a ``backbone`` and a ``head``.

Lightning's division: what a run does beside that (figures, gathering predictions for the report, rebuilding the
schedule on resume) is done by callbacks in training/callbacks.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassStatScores,
)

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES
from fer_lightning.core.lightning_private import compile_or_run_eagerly, restarted_mid_epoch
from fer_lightning.core.validation import check_value

NetBuilder = Callable[..., nn.Module]
OptimizerBuilder = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerBuilder = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


STAGES = ("train", "val", "test")


def stage_metrics() -> MetricCollection:
    """Accuracy, and precision, recall and F1 per class with each class's support; their macro averages are taken
    in ``log_stage`` as the reports take them (the mean over the classes present in the labels, see
    evaluation/reports.py)."""
    # No argument checks per update: they call torch.unique, a host sync every step on a GPU; the labels are the
    # datamodule's own class indices.
    checks = {"validate_args": False}
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(NUM_CLASSES, average="micro", **checks),
            "support": MulticlassStatScores(NUM_CLASSES, average=None, **checks),
            "precision": MulticlassPrecision(NUM_CLASSES, average=None, **checks),
            "recall": MulticlassRecall(NUM_CLASSES, average=None, **checks),
            "f1": MulticlassF1Score(NUM_CLASSES, average=None, **checks),
        }
    )


class EmotionClassifier(LightningModule):
    """Cross-entropy (optional label smoothing and class weights) with an optimizer and scheduler from conf.

    ``net`` is a partial builder called with ``num_classes``, ``dropout``, ``pretrained`` and
    ``weights_path``, so these and the learning rate are plain hyperparameters of this module that a
    sweep sets directly (``model.lr=...``, ``model.dropout=...``). The optimizer gets two parameter
    groups, head at ``lr`` and backbone at ``lr * backbone_lr_ratio`` (see FreezeBackbone). ``teacher``: a trained
    model to distil from (training/run.py loads ``model.teacher``'s checkpoint and hands it in).
    """

    def __init__(
        self,
        net: NetBuilder,
        optimizer: OptimizerBuilder,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        backbone_lr_ratio: float = 1.0,
        dropout: float = 0.5,
        pretrained: bool = False,
        weights_path: str | None = None,
        scheduler: SchedulerBuilder | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        scheduler_monitor: str | None = None,
        label_smoothing: float = 0.0,
        class_weights: Literal["balanced"] | Sequence[float] | None = None,
        channels_last: bool = True,
        batch_mix: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
        compile: bool = False,
        teacher: nn.Module | None = None,
        distill_weight: float = 0.5,
        distill_temperature: float = 2.0,
        finite_check_every_n_steps: int = 50,
    ) -> None:
        super().__init__()
        check_value("model.lr", lr, float, 0, low_open=True)
        check_value("model.weight_decay", weight_decay, float, 0)
        check_value("model.backbone_lr_ratio", backbone_lr_ratio, float, 0)
        check_value("model.dropout", dropout, float, 0, 1, high_open=True)
        check_value("model.label_smoothing", label_smoothing, float, 0, 1, high_open=True)
        check_value("model.distill_weight", distill_weight, float, 0, 1)
        check_value("model.distill_temperature", distill_temperature, float, 0, low_open=True)
        check_value("model.finite_check_every_n_steps", finite_check_every_n_steps, int, 1)
        if teacher is not None and not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher={teacher!r}: a trained nn.Module (training/run.py loads model.teacher's file)")
        # Builders and the teacher stay out of the checkpoint's hyperparameters: they would make it unloadable with
        # torch.load(weights_only=True). The run's whole config is stored beside them instead (StoreConfig).
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "batch_mix", "teacher"])
        self.optimizer_builder = optimizer
        self.scheduler_builder = scheduler
        self.batch_mix = batch_mix
        # The teacher sits in a tuple: not a submodule, so it stays out of the checkpoints, the optimizer and the model
        # summary (and so out of .to(): on_fit_start moves it).
        self.teacher: tuple[nn.Module, ...] = (teacher.eval().requires_grad_(False),) if teacher is not None else ()
        self.net = net(num_classes=NUM_CLASSES, dropout=dropout, pretrained=pretrained, weights_path=weights_path)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.register_buffer("class_weights", torch.ones(NUM_CLASSES))
        if class_weights is not None and class_weights != "balanced":
            if len(class_weights) != NUM_CLASSES:
                raise ValueError(f"model.class_weights has {len(class_weights)} values, expected {NUM_CLASSES}")
            self.class_weights.copy_(torch.as_tensor(class_weights, dtype=torch.float))
        # One collection per stage, in two ModuleDicts: the model summary shows them as two rows, not eight.
        # (Keys are "<stage>_split": a ModuleDict key may not shadow a Module attribute such as train.)
        self.metrics = nn.ModuleDict({f"{stage}_split": stage_metrics().clone(prefix=f"{stage}/") for stage in STAGES})
        # nan_strategy="disable": MeanMetric's own NaN check is a host sync; a non-finite training loss is caught below.
        self.losses = nn.ModuleDict({f"{stage}_split": MeanMetric(nan_strategy="disable") for stage in STAGES})
        self.nonfinite_steps = torch.zeros((), dtype=torch.long)  # on a GPU: counted there, read every few steps
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # in checkpoints: a resumed run's best still counts the epochs before it
        side = getattr(self.net, "input_size", None)
        if side:  # the model summary then shows in/out shapes and FLOPs
            self.example_input_array = torch.zeros(1, 1, side, side)

    @property
    def backbone(self) -> nn.Module:
        """The pretrained-or-feature part, as Lightning's BackboneFinetuning expects it."""
        return self.net.backbone

    def forward(self, x: Tensor) -> Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def configure_model(self) -> None:
        """``model.compile=true``: the net through torch.compile (in place: checkpoint keys stay the same)."""
        if self.hparams.compile and not getattr(self, "_compiled", False):
            compile_or_run_eagerly(self.net)
            self._compiled = True

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams.class_weights == "balanced" and stage == "fit" and datamodule is not None:
            counts = torch.as_tensor(datamodule.train_class_counts, dtype=torch.float)
            # sklearn's "balanced": n_samples / (n_classes * count), so the mean weight per sample is 1.
            self.class_weights.copy_(counts.sum() / (NUM_CLASSES * counts.clamp(min=1)))

    def step(self, batch: tuple[Tensor, Tensor], stage: str) -> tuple[Tensor, Tensor]:
        """(loss, logits) of a batch; the stage's metrics are updated."""
        images, labels = batch
        targets: Tensor = labels
        if stage == "train" and self.batch_mix is not None:  # MixUp / CutMix: soft targets, metrics on the labels
            images, targets = self.batch_mix(images, labels)
        logits = self(images)
        loss = F.cross_entropy(
            logits.float(), targets, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing
        )
        if stage == "train" and self.teacher:
            loss = (1 - self.hparams.distill_weight) * loss + self.hparams.distill_weight * self.distillation(
                images, logits
            )
        self.losses[f"{stage}_split"].update(loss.detach())
        self.metrics[f"{stage}_split"].update(logits.detach(), labels)
        return loss, logits.detach()

    def distillation(self, images: Tensor, logits: Tensor) -> Tensor:
        """T^2 * KL(teacher || net) of the probabilities softened by T, on the images the net saw (mixed ones too)."""
        temperature = self.hparams.distill_temperature
        with torch.no_grad():
            taught = self.teacher[0](images).float()
        return temperature**2 * F.kl_div(
            (logits.float() / temperature).log_softmax(-1),
            (taught / temperature).log_softmax(-1),
            log_target=True,
            reduction="batchmean",
        )

    def on_fit_start(self) -> None:
        """The teacher, on this run's device (it is no submodule, so Lightning does not move it)."""
        if self.teacher:
            self.teacher = (self.teacher[0].to(self.device),)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The loss, checked for divergence: on a CPU every step (before the optimizer spreads NaN into the weights);
        on a GPU, where reading it would stop the host queueing work, counted on the device and read every
        ``model.finite_check_every_n_steps`` steps and before validation (so no checkpoint keeps NaN weights)."""
        loss, _ = self.step(batch, "train")
        if loss.device.type == "cpu":
            if not torch.isfinite(loss):
                self.nonfinite_steps += 1
                self.check_finite(f"{loss.item()}")
        else:
            self.nonfinite_steps = self.nonfinite_steps.to(loss.device) + (~torch.isfinite(loss.detach())).long()
            if (batch_idx + 1) % self.hparams.finite_check_every_n_steps == 0:
                self.check_finite()
        return loss

    def check_finite(self, value: str = "not finite") -> None:
        if int(self.nonfinite_steps):
            raise FloatingPointError(
                f"training diverged: the loss is {value} at epoch {self.current_epoch}, step {self.global_step} "
                f"({int(self.nonfinite_steps)} such step(s)); the checkpoints written so far are kept. "
                "Try a lower model.lr or trainer.gradient_clip_val=1.0"
            )

    def on_validation_start(self) -> None:
        if not self.trainer.sanity_checking:
            self.check_finite()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The logits, for the callbacks that keep predictions (training/callbacks.py GatherPredictions)."""
        return self.step(batch, "val")[1]

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.step(batch, "test")[1]

    def log_stage(self, stage: str) -> dict[str, Tensor]:
        """Compute once per epoch (not per step: no device sync in the loop), log, reset.

        Precision, recall and F1 are logged as macro averages (``<stage>/f1``); val and test add F1 per class.
        """
        metrics, loss = self.metrics[f"{stage}_split"], self.losses[f"{stage}_split"]
        values = {f"{stage}/loss": loss.compute()}
        computed = metrics.compute()
        present = computed.pop(f"{stage}/support")[:, 4] > 0  # stat scores: tp, fp, tn, fn, support
        for name, value in computed.items():
            values[name] = value[present].mean() if value.ndim else value  # per class -> the macro average
            if name == f"{stage}/f1" and stage != "train":
                values.update({f"{stage}/f1_{emotion}": v for emotion, v in zip(EMOTIONS, value, strict=True)})
        metrics.reset()
        loss.reset()
        accuracy = f"{stage}/acc"
        self.log_dict({name: value for name, value in values.items() if name != accuracy})
        self.log(accuracy, values[accuracy], prog_bar=True)
        # Epoch metrics are drawn against the epoch (Lightning takes a logged "step" as the x value), so the jobs
        # of a batch-size sweep line up; test's numbers sit at the last epoch's step.
        self.log("step", float(self.epoch_number))
        return values

    @property
    def epoch_number(self) -> int:
        """Epochs counted from 1, as the log lines, the progress bar and the figures count them: the epoch being
        trained or validated; at test, the last one trained."""
        return self.current_epoch + (0 if self.trainer.testing else 1)

    def on_train_start(self) -> None:
        """Resumed mid-epoch (an interrupt's last.ckpt, a requeued SLURM job), the lr of the epoch it goes on with is
        logged here: Lightning skips on_train_epoch_start then (the schedule is already rebuilt by then: callbacks'
        on_train_start run before the module's)."""
        if restarted_mid_epoch(self.trainer):
            self.on_train_epoch_start()

    def on_train_epoch_start(self) -> None:
        """The learning rate, logged with the epoch's metrics (x = epoch): ``train/lr``, the head's (``model.lr``),
        and ``train/lr_backbone`` where the backbone has a rate of its own (``model.backbone_lr_ratio`` is not 1;
        every scheduler scales both groups alike)."""
        groups = {group.get("name"): group["lr"] for group in self.trainer.optimizers[0].param_groups}
        self.log("train/lr", float(groups["head"]), on_step=False, on_epoch=True)
        if self.hparams.backbone_lr_ratio != 1:
            self.log("train/lr_backbone", float(groups["backbone"]), on_step=False, on_epoch=True)

    def on_train_epoch_end(self) -> None:
        if self.losses[
            "train_split"
        ].update_count:  # none after resuming from an interruption between training and validation
            self.log_stage("train")

    @property
    def best_val_accuracy(self) -> float:
        """The best val accuracy of the epochs before (-inf before the first; restored on resume)."""
        return float(self.val_acc_best.max_value)

    def on_validation_epoch_end(self) -> None:
        values = self.log_stage("val")
        if not self.trainer.sanity_checking:
            self.val_acc_best.update(values["val/acc"])
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self.log_stage("test")

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The configured optimizer over two groups: the head at ``lr``, the backbone at ``lr * backbone_lr_ratio``."""
        lr = self.hparams.lr
        backbone = list(self.backbone.parameters())
        in_backbone = {id(p) for p in backbone}
        head = [p for p in self.parameters() if id(p) not in in_backbone]
        groups = [
            {"params": head, "lr": lr, "name": "head"},
            {"params": backbone, "lr": lr * self.hparams.backbone_lr_ratio, "name": "backbone"},
        ]
        return self.optimizer_builder(groups, lr=lr, weight_decay=self.hparams.weight_decay)

    def configure_optimizers(self) -> dict:
        optimizer = self.build_optimizer()
        if self.scheduler_builder is None:
            return {"optimizer": optimizer}
        config = {"scheduler": self.build_scheduler(optimizer), "interval": self.hparams.scheduler_interval}
        if self.hparams.scheduler_monitor:  # ReduceLROnPlateau: stepped on a validation metric
            config["monitor"] = self.hparams.scheduler_monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """The configured schedule over this run's length (a schedule stepped per batch is told it in steps);
        training/callbacks.py ScheduleOverNewHorizon rebuilds it so on resume."""
        extra = (
            {"total_steps": int(self.trainer.estimated_stepping_batches)}
            if self.hparams.scheduler_interval == "step"
            else {}
        )
        return self.scheduler_builder(optimizer, **extra)
