"""Exported ONNX and TorchScript models take raw 0..255 faces and give PyTorch's probabilities, class names beside."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.data.synthetic import make_synthetic_faces
from fer_lightning.data.transforms import build_transform, eval_transform
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.export import ServingModel, export


def raw_faces() -> np.ndarray:
    """Face-like and pure-noise uint8 faces, (N, 48, 48)."""
    faces, _ = make_synthetic_faces(1, np.random.default_rng(5))
    return np.concatenate([faces, np.random.default_rng(6).integers(0, 256, (3, 48, 48), dtype=np.uint8)])


def pytorch_probabilities(ckpt: Path, faces: np.ndarray) -> np.ndarray:
    """The checkpoint's model in fp32 on the training eval transform: what the export must reproduce."""
    trained = LoadedCheckpoint.load(ckpt)
    model, transform = trained.model, eval_transform(trained.config.data)
    with torch.no_grad():
        return model(torch.stack([transform(image=f)["image"] for f in faces])).softmax(-1).numpy()


def run_exported(file: Path, fmt: str, batch: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(probabilities, class names stored inside the file) from the file alone."""
    if fmt == "torchscript":
        stored = {"classes.json": ""}
        module = torch.jit.load(str(file), _extra_files=stored)
        return module(torch.from_numpy(batch)).detach().numpy(), json.loads(stored["classes.json"])["classes"]
    onnxruntime = pytest.importorskip("onnxruntime", reason="optional extra: pip install -e '.[onnx]'")
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"faces": batch})[0]
    return probabilities, json.loads(session.get_modelmeta().custom_metadata_map["classes"])


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # TorchScript is what users ask for
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_matches_pytorch_on_raw_faces(make_cfg, trained_checkpoint: Path, fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="optional extra: pip install -e '.[onnx]'")
    faces = raw_faces()
    expected = pytorch_probabilities(trained_checkpoint, faces)

    cfg = make_cfg(f"ckpt_path={trained_checkpoint}", f"export.format={fmt}", config="export", fast=False)
    file = export(cfg)

    batch = faces[:, None].astype(np.float32)  # (N, 1, 48, 48), gray values 0..255: nothing else to do
    for part in (batch, batch[:1]):  # any batch size
        got, classes = run_exported(file, fmt, part)
        assert got.shape == (len(part), len(EMOTIONS))
        np.testing.assert_allclose(got, expected[: len(part)], atol=1e-4)
    assert classes == list(EMOTIONS)
    beside = json.loads(file.with_name(f"{file.name}.classes.json").read_text())
    assert beside["classes"] == list(EMOTIONS) and "0..255" in beside["input"]
    assert file.parent == Path(cfg.paths.output_dir) and file.suffix == {"onnx": ".onnx", "torchscript": ".pt"}[fmt]


@pytest.mark.parametrize("image_size", [64, 224])
def test_preprocessing_inside_matches_the_training_transform_when_it_resizes(image_size: int) -> None:
    faces = raw_faces()
    inside = ServingModel(nn.Identity(), image_size, mean=0.5, std=0.25).preprocess(
        torch.from_numpy(faces)[:, None].float()
    )
    transform = build_transform(image_size, 0.5, 0.25)
    training = torch.stack([transform(image=f)["image"] for f in faces])
    assert inside.shape == training.shape == (len(faces), 1, image_size, image_size)
    # cv2 resizes uint8 with rounding, the model in float: the same image to within one gray level.
    assert (inside - training).abs().max() * 0.25 * 255 < 1.0


def test_an_unknown_format_or_weight_storage_is_refused(make_cfg, trained_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="export.format='tflite'"):
        export(make_cfg(f"ckpt_path={trained_checkpoint}", "export.format=tflite", config="export", fast=False))
    with pytest.raises(ValueError, match="export.weights='int4': expected one of float16, int8"):
        export(make_cfg(f"ckpt_path={trained_checkpoint}", "export.weights=int4", config="export", fast=False))


def test_the_command_line_writes_the_model_and_its_classes(trained_checkpoint: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fer_lightning.export",
        f"ckpt_path={trained_checkpoint}",
        "export.format=torchscript",
        f"hydra.run.dir={tmp_path}",
    ]
    subprocess.run(command, check=True, cwd=tmp_path, capture_output=True, timeout=120)
    assert (tmp_path / "fer_scratch_cnn.torchscript.pt").is_file()  # named by its format
    assert json.loads((tmp_path / "fer_scratch_cnn.torchscript.pt.classes.json").read_text())["classes"] == list(
        EMOTIONS
    )


def test_an_export_that_fails_its_check_leaves_no_file(make_cfg, trained_checkpoint: Path) -> None:
    cfg = make_cfg(
        f"ckpt_path={trained_checkpoint}",
        "export.format=torchscript",
        "export.verify_atol=-1",
        config="export",
        fast=False,
    )
    with pytest.raises(RuntimeError, match="differ from PyTorch's .* nothing was written"):
        export(cfg)
    assert not any(Path(cfg.paths.output_dir).glob("*.pt*"))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_a_torchscript_file_names_a_wrong_input_and_its_outputs_need_no_detach(
    make_cfg, trained_checkpoint: Path
) -> None:
    file = export(make_cfg(f"ckpt_path={trained_checkpoint}", "export.format=torchscript", config="export", fast=False))
    module = torch.jit.load(str(file))
    faces = torch.from_numpy(raw_faces()[:, None].astype(np.float32))
    probabilities = module(faces)
    assert not probabilities.requires_grad
    assert probabilities.numpy().shape == (len(faces), len(EMOTIONS))  # no .detach() needed
    for wrong in (faces[:, 0], faces.expand(-1, 3, -1, -1), faces[..., :40], faces.double()):
        with pytest.raises(Exception, match=r"expected faces .*(shape \(N, 1, 48, 48\)|float32)") as error:
            module(wrong)
        assert "mat1 and mat2" not in str(error.value)
    np.testing.assert_allclose(module(faces.to(torch.uint8)).numpy(), probabilities.numpy(), atol=1e-5)


def test_each_format_gets_a_file_name_of_its_own(make_cfg, trained_checkpoint: Path) -> None:
    files = [
        export(make_cfg(f"ckpt_path={trained_checkpoint}", *overrides, config="export", fast=False))
        for overrides in (
            ["export.format=torchscript"],
            ["export.format=weights", "export.weights=float16"],
            ["export.format=weights", "export.weights=int8"],
        )
    ]
    assert [f.name for f in files] == [
        "fer_scratch_cnn.torchscript.pt",
        "fer_scratch_cnn.float16.pt",
        "fer_scratch_cnn.int8.pt",
    ]
    assert all(f.is_file() for f in files)  # one folder, nothing overwritten
