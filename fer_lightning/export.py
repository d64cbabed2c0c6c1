"""python -m fer_lightning.export: a self-contained model file for serving, ONNX or TorchScript."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from fer_lightning.checkpoints import load_classifier
from fer_lightning.classes import EMOTIONS
from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.readers import FACE_SIZE
from fer_lightning.files import write_atomically

log = logging.getLogger(__name__)


class ServingModel(nn.Module):
    """Raw 48x48 gray faces in 0..255 -> probabilities: scaling, resizing and normalisation live inside,
    so a caller needs nothing from this project."""

    def __init__(self, net: nn.Module, image_size: int, mean: float, std: float) -> None:
        super().__init__()
        self.net, self.image_size, self.mean, self.std = net, image_size, mean, std

    def forward(self, faces: Tensor) -> Tensor:
        x = faces / 255.0
        if self.image_size != FACE_SIZE:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std).softmax(-1)


def serving_model(ckpt_path: str) -> tuple[ServingModel, DictConfig]:
    model, trained = load_classifier(ckpt_path)
    net = model.net.float().to(memory_format=torch.contiguous_format)
    return ServingModel(net, trained.data.image_size, trained.data.mean, trained.data.std).eval(), trained


def export(cfg: DictConfig) -> Path:
    fmt = cfg.export.format
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"export.format={fmt!r}: expected onnx or torchscript")
    serving, trained = serving_model(cfg.ckpt_path)
    name = trained.model.net._target_.rsplit(".", 1)[-1]
    file = Path(cfg.export.file or Path(cfg.paths.output_dir) / f"fer_{name}.{'onnx' if fmt == 'onnx' else 'pt'}")
    example = torch.zeros(2, 1, FACE_SIZE, FACE_SIZE)
    with torch.no_grad():
        if fmt == "torchscript":
            traced = torch.jit.trace(serving, example)
            write_atomically(file, lambda tmp: traced.save(str(tmp)))
        else:
            import onnx  # optional extra: pip install -e '.[onnx]'

            def write_onnx(tmp: Path) -> None:
                torch.onnx.export(serving, (example,), str(tmp), input_names=["faces"], output_names=["probabilities"],
                                  dynamic_axes={"faces": {0: "batch"}, "probabilities": {0: "batch"}},
                                  opset_version=cfg.export.opset, dynamo=False)
                proto = onnx.load(str(tmp))
                onnx.helper.set_model_props(proto, {"classes": json.dumps(list(EMOTIONS))})
                onnx.save(proto, str(tmp))

            write_atomically(file, write_onnx)
    classes = {"classes": list(EMOTIONS), "input": "float (N, 1, 48, 48), gray 0..255", "output": "probabilities (N, 7)"}
    write_atomically(file.with_name(file.name + ".classes.json"), lambda tmp: tmp.write_text(json.dumps(classes, indent=2)))
    log.info("Exported %s to %s (classes in %s.classes.json)", cfg.ckpt_path, file, file.name)
    return file


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
