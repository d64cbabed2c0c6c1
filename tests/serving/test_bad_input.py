"""Serving's bad and awkward inputs: a detector given no photo says so in one line; export's onnxruntime check
writes nothing under the home folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from fer_lightning.serving.recognizer import detector_config


@pytest.mark.parametrize("name", ["haar", "ssd"])
@pytest.mark.parametrize("image", [np.zeros((0,), np.uint8), np.zeros((0, 0, 3), np.uint8), np.zeros((5, 5, 2))])
def test_a_detector_given_no_photo_says_so_in_one_line(name: str, image: np.ndarray) -> None:
    detector = instantiate(detector_config(name))
    with pytest.raises(
        ValueError, match=rf"detect\(\): an image of shape \({image.shape[0]},.*expected a decoded photo"
    ):
        detector(image)


def test_importing_onnxruntime_for_exports_check_writes_nothing_under_home(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"} | {"HOME": str(tmp_path)}
    code = "from fer_lightning.serving.export import import_onnxruntime; print(import_onnxruntime().__name__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "onnxruntime", out.stderr
    # onnxruntime's device id and telemetry database (~/.cache/Microsoft/DeveloperTools/.onnxruntime); matplotlib's
    # font cache, written by importing the package, is another matter
    assert not [p for p in tmp_path.rglob("*") if "onnxruntime" in p.name or p.name == "Microsoft"]
