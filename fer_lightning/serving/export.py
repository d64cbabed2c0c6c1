"""python -m fer_lightning.export: a self-contained model file for serving, ONNX or TorchScript; or the compact
checkpoint (``export.format=weights``: float16 or int8 weights, config and classes) that fer_lightning loads, as the
released default model is made.

The exported model takes raw faces, a float32 batch (N, 1, 48, 48) of gray values in 0..255 (any N), and
returns (N, 7) probabilities in EMOTIONS order. Scaling to 0..1, resizing to the checkpoint's image_size
and normalising with its mean and std happen inside, so a caller needs nothing from this project; to get
a face from a photo, crop and shrink it as fer_lightning/serving/faces.py does. The class names are stored beside
the model (<file>.classes.json), inside it (ONNX metadata_props "classes"; TorchScript extra file
"classes.json"). A temperature the checkpoint holds (``eval.calibrate=true``) divides the logits inside. The file
is checked against PyTorch before it appears (export.verify_atol).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from fer_lightning.core.checkpoints import check_weight_storage, compact_checkpoint, save_whole
from fer_lightning.core.classes import EMOTIONS, FACE_SIZE
from fer_lightning.core.files import write_atomically, write_json
from fer_lightning.models.trained import LoadedCheckpoint

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "weights": ".pt"}
ONNX_EXTRA = "export.format=onnx needs the optional extra: pip install -e '.[onnx]' (onnx and onnxruntime)"


class ServingModel(nn.Module):
    """Raw 48x48 gray faces in 0..255 -> probabilities, in plain fp32 and contiguous memory (no autocast,
    no channels_last: the exporters and their runtimes see an ordinary CNN)."""

    def __init__(
        self,
        net: nn.Module,
        image_size: int,
        mean: float,
        std: float,
        crop_size: int | None = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.net, self.image_size, self.mean, self.std, self.crop_size = net, image_size, mean, std, crop_size
        self.temperature = temperature

    def preprocess(self, faces: Tensor) -> Tensor:
        """What training's eval transform makes of a uint8 face (within its uint8 rounding when it resizes)."""
        x = faces / 255.0
        if self.image_size != FACE_SIZE:  # bilinear, half-pixel centres: cv2.INTER_LINEAR as in build_transform
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        if self.crop_size:  # the centre crop, as albumentations' CenterCrop takes it
            top = (self.image_size - self.crop_size) // 2
            x = x[..., top : top + self.crop_size, top : top + self.crop_size]
        return (x - self.mean) / self.std

    def forward(self, faces: Tensor) -> Tensor:
        return (self.net(self.preprocess(faces)) / self.temperature).softmax(-1)


def serving_model(trained: LoadedCheckpoint) -> ServingModel:
    """The checkpoint's net in a ServingModel (eval mode)."""
    net = trained.model.net.float().to(memory_format=torch.contiguous_format)
    data = trained.config.data
    return ServingModel(net, data.image_size, data.mean, data.std, trained.crop_size, trained.temperature).eval()


def model_card(trained: LoadedCheckpoint) -> dict[str, Any]:
    """What a user of the file needs to know, stored beside it and inside it."""
    data = trained.config.data
    return {
        "classes": list(EMOTIONS),
        "input": f"faces: float32 (N, 1, {FACE_SIZE}, {FACE_SIZE}), gray values 0..255, any N",
        "output": f"probabilities: float32 (N, {len(EMOTIONS)}), in the order of classes",
        "preprocessing_inside": {
            "image_size": data.image_size,
            "crop_size": trained.crop_size,
            "mean": data.mean,
            "std": data.std,
        },
        "temperature": trained.temperature,
        "net": trained.config.model.net._target_,
        "checkpoint": str(trained.path),
    } | ({"members": list(trained.members)} if trained.members else {})


def default_name(trained: LoadedCheckpoint, settings: DictConfig) -> str:
    """``fer_<net>.onnx``, ``fer_<net>.torchscript.pt``, ``fer_<net>.<float16|int8>.pt``: each format (and weight
    storage) its own name, so exports of one model into one folder never overwrite each other."""
    net = trained.config.model.net._target_.rsplit(".", 1)[-1]
    kind = {"onnx": "", "torchscript": ".torchscript", "weights": f".{settings.weights}"}[settings.format]
    return f"fer_{net}{kind}{FORMATS[settings.format]}"


def export(cfg: DictConfig) -> Path:
    """Write the model file (checked against PyTorch before it appears) and <file>.classes.json; return its path."""
    settings = cfg.export
    if settings.format not in FORMATS:
        raise ValueError(f"export.format={settings.format!r}: expected one of {sorted(FORMATS)}")
    check_weight_storage(settings.weights)  # before loading: the value is checked for every format
    trained = LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root, device="cpu")  # exporters trace on the CPU
    serving, card = serving_model(trained), model_card(trained)
    file = (
        Path(settings.file).expanduser()
        if settings.file
        else Path(cfg.paths.output_dir) / default_name(trained, settings)
    )

    def write(tmp: Path) -> None:
        if settings.format == "weights":
            save_whole(compact_checkpoint(trained.path, settings.weights), tmp)
        elif settings.format == "torchscript":
            save_torchscript(serving, card, tmp)
        else:
            save_onnx(serving, card, tmp, settings.opset, settings.dynamo)
        atol = settings.weights_atol if settings.format == "weights" else settings.verify_atol
        if atol is not None:
            difference = max_difference(tmp, settings.format, serving)
            if difference > atol:
                raise RuntimeError(
                    f"{file}: the exported probabilities differ from PyTorch's by {difference:.2e} "
                    f"> {atol} (export.verify_atol, weights_atol for weights); nothing was written"
                )
            log.info("Checked %s against PyTorch: largest difference %.1e", file.name, difference)

    write_atomically(file, write)
    if settings.format == "weights":  # the classes and config are inside; fer_lightning reads it as a checkpoint
        log.info("Exported %s to %s (%.1f MB): give it as ckpt_path=", trained.path, file, file.stat().st_size / 1e6)
        return file
    write_json(card, file.with_name(f"{file.name}.classes.json"))
    log.info("Exported %s to %s (classes in %s.classes.json)", trained.path, file, file.name)
    return file


def example_faces(n: int) -> Tensor:
    """Random raw faces, the same every time."""
    return torch.randint(0, 256, (n, 1, FACE_SIZE, FACE_SIZE), generator=torch.Generator().manual_seed(n)).float()


@contextmanager
def quiet_jit() -> Iterator[None]:
    """torch 2.9+ warns that torch.jit is deprecated on every call; TorchScript is still what users ask for."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
        yield


class CheckedFaces(nn.Module):
    """The traced model behind a scripted check of its input, so a wrong shape or type is named in one message
    (a trace keeps no Python checks: a (N, 48, 48) batch would fail in a matmul deep inside the net)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.side = model, FACE_SIZE

    def forward(self, faces: Tensor) -> Tensor:
        if faces.dim() != 4 or faces.size(1) != 1 or faces.size(2) != self.side or faces.size(3) != self.side:
            raise ValueError(
                "expected faces of shape (N, 1, 48, 48), gray values 0..255 in float32; got shape " + str(faces.shape)
            )
        if faces.dtype != torch.float32 and faces.dtype != torch.uint8:
            raise ValueError("expected faces in float32 (or uint8), gray values 0..255; got " + str(faces.dtype))
        return self.model(faces)


def save_torchscript(serving: ServingModel, card: dict[str, Any], path: Path) -> None:
    """Traced (a CNN has no data-dependent control flow; the batch size of the example does not stick) and wrapped in
    a scripted input check (``CheckedFaces``). The weights need no gradient, so the outputs need none either: a caller
    takes ``.numpy()`` of them without ``.detach()``."""
    serving.requires_grad_(False)
    with torch.no_grad(), quiet_jit():
        traced = torch.jit.trace(serving, example_faces(2))
        scripted = torch.jit.script(CheckedFaces(traced))
    scripted.save(str(path), _extra_files={"classes.json": json.dumps(card)})


def save_onnx(serving: ServingModel, card: dict[str, Any], path: Path, opset: int, dynamo: bool) -> None:
    """Batch axis dynamic; the card in metadata_props ("classes": the names as JSON, "fer_lightning": all of it)."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(ONNX_EXTRA) from error
    with torch.no_grad(), warnings.catch_warnings():  # dynamo=false is a choice (no onnxscript needed): no nagging
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="The feature will be removed")
        torch.onnx.export(
            serving,
            (example_faces(2),),
            str(path),
            input_names=["faces"],
            output_names=["probabilities"],
            dynamic_axes={"faces": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=opset,
            dynamo=dynamo,
        )
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"classes": json.dumps(card["classes"]), "fer_lightning": json.dumps(card)})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def max_difference(file: Path, fmt: str, serving: ServingModel) -> float:
    """Largest gap between the file's probabilities and PyTorch's, on random faces in a batch of another size."""
    faces = example_faces(3)
    with torch.no_grad():
        expected = serving(faces).numpy()
        if fmt == "weights":
            got = serving_model(LoadedCheckpoint.load(file, device="cpu"))(faces).numpy()
        elif fmt == "torchscript":
            with quiet_jit():
                got = torch.jit.load(str(file))(faces).numpy()
        else:
            onnxruntime = import_onnxruntime()
            session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
            got = session.run(["probabilities"], {"faces": faces.numpy()})[0]
    return float(np.abs(got - expected).max())


def import_onnxruntime() -> Any:
    """``import onnxruntime`` without the files it writes on import (a device id and a telemetry database under
    ``$XDG_CACHE_HOME``, else ``~/.cache/Microsoft``): they go to a temporary folder, removed at once."""
    saved = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="fer-onnxruntime-") as scratch:
        os.environ["XDG_CACHE_HOME"] = scratch
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(f"{ONNX_EXTRA}; or export.verify_atol=null to skip the check") from error
        finally:
            if saved is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = saved
    return onnxruntime
