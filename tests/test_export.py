"""Exported ONNX and TorchScript models give PyTorch's probabilities from raw 0..255 faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_lightning.classes import EMOTIONS
from fer_lightning.export import export, serving_model


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_matches_pytorch(make_cfg, trained_checkpoint: Path, fmt: str) -> None:
    faces = torch.randint(0, 256, (5, 1, 48, 48)).float()
    reference, _ = serving_model(str(trained_checkpoint))
    with torch.no_grad():
        expected = reference(faces).numpy()
    np.testing.assert_allclose(expected.sum(1), 1.0, atol=1e-5)

    file = export(make_cfg(f"ckpt_path={trained_checkpoint}", f"export.format={fmt}", config="export", fast=False))
    if fmt == "torchscript":
        got = torch.jit.load(str(file))(faces).detach().numpy()
    else:
        onnxruntime = pytest.importorskip("onnxruntime", reason="optional extra: pip install -e '.[onnx]'")
        session = onnxruntime.InferenceSession(str(file))
        got = session.run(["probabilities"], {"faces": faces.numpy()})[0]
        assert json.loads(session.get_modelmeta().custom_metadata_map["classes"]) == list(EMOTIONS)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert json.loads(file.with_name(file.name + ".classes.json").read_text())["classes"] == list(EMOTIONS)
