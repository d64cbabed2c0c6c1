"""The accuracy knobs (label smoothing, class weights, crops, MixUp, schedules ...) are wired: each changes what
training does, on tiny synthetic runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from torch import Tensor

import fer_lightning.models.classifier as classifier
from fer_lightning.core.classes import NUM_CLASSES
from fer_lightning.evaluation.evaluate import evaluate
from fer_lightning.evaluation.inference import tta_views
from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN, SMALL_RUN


def test_ema_checkpoints_the_averaged_weights_beside_the_raw_ones(make_cfg, tmp_path: Path) -> None:
    train(
        make_cfg(*SMALL_RUN, "test=false", "trainer.max_epochs=2", "callbacks=[default,ema]", "callbacks.ema.decay=0.9")
    )
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    averaged, raw = saved["state_dict"], saved["current_model_state"]  # validated and tested with the average
    weights = [key for key in raw if key.startswith("net.") and "running" not in key and "num_batches" not in key]
    assert weights and all(not torch.equal(averaged[key], raw[key]) for key in weights)


def test_mixup_trains_on_soft_targets_and_validates_on_the_true_labels(
    make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_cfg(
        *SMALL_CNN,
        "+model.batch_mix._target_=torchvision.transforms.v2.MixUp",
        f"+model.batch_mix.num_classes={NUM_CLASSES}",
    )
    model = instantiate(cfg.model)
    seen: dict[str, Tensor] = {}
    cross_entropy = classifier.F.cross_entropy
    monkeypatch.setattr(
        classifier.F,
        "cross_entropy",
        lambda logits, targets, **kw: seen.update(targets=targets) or cross_entropy(logits, targets, **kw),
    )
    images, labels = torch.rand(NUM_CLASSES, 1, 48, 48), torch.arange(NUM_CLASSES)  # each face mixed with its neighbour
    model.step((images, labels), "train")
    mixed = seen["targets"]
    assert mixed.shape == (NUM_CLASSES, NUM_CLASSES) and torch.allclose(mixed.sum(1), torch.ones(NUM_CLASSES))
    assert (mixed.max(1).values < 1).all()  # every target a blend of two classes, not a one-hot label
    model.step((images, labels), "val")
    assert torch.equal(seen["targets"], labels)  # validation: the true labels, unmixed


def test_tencrop_tta_of_a_net_trained_on_random_crops(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(*SMALL_RUN, "test=false", "trainer.max_epochs=1", "data.crop_size=40"))
    best = json.loads((tmp_path / "run" / "metrics.json").read_text())["best_checkpoint"]
    probabilities = {}
    for tta in ("none", "tencrop"):
        evaluate(make_cfg(f"ckpt_path={best}", f"eval.tta={tta}", "eval.split=val", config="eval", fast=False))
        probabilities[tta] = pd.read_csv(tmp_path / "run" / "predictions.csv").filter(like="p_").to_numpy()
    assert probabilities["none"].shape == probabilities["tencrop"].shape == (len(probabilities["none"]), NUM_CLASSES)
    np.testing.assert_allclose(probabilities["tencrop"].sum(1), 1, atol=1e-4)
    # The mean over ten 40x40 crops of the 48x48 face (corners, centre, mirrors), not the centre crop alone.
    assert not np.allclose(probabilities["none"], probabilities["tencrop"], atol=1e-4)
    views = tta_views(torch.rand(3, 1, 48, 48), "tencrop", 0.9, crop_size=40)
    assert len(views) == 10 and all(view.shape == (3, 1, 40, 40) for view in views)


def test_compile_falls_back_to_eager_where_the_compiler_fails(make_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch._inductor.compile_fx

    calls = []

    def no_compiler(*args: object, **kwargs: object) -> None:
        calls.append(1)
        raise RuntimeError("no C++ compiler on this machine")

    monkeypatch.setattr(torch._inductor.compile_fx, "compile_fx", no_compiler)  # what dynamo's inductor backend calls
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)  # compile=true turns it on: undone after
    torch._dynamo.reset()
    metrics = train(make_cfg(*SMALL_RUN, "test=false", "trainer.max_epochs=1", "model.compile=true"))
    assert calls  # compiling was tried ...
    assert np.isfinite(metrics["val/acc"]) and np.isfinite(metrics["val/loss"])  # ... and the run went on eagerly
    torch._dynamo.reset()
