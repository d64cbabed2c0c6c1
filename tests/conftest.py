"""What the tests share: the real configs composed inside a Hydra context, small runs, and data the tests make
themselves (FER-2013's two formats, drawn portraits, a stand-in ImageNet file). Tests import the constants and
helpers from here (``from tests.conftest import SMALL_RUN``); the fixtures pytest hands them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionStartInfo
from torchvision import models

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.console import chatter_patterns
from fer_lightning.models.weights import weights_file

# Small enough for seconds per run on two cores; every test can override any of it.
FAST = [
    "data=synthetic",
    "data.synthetic.train=30",
    "data.synthetic.val=8",
    "data.synthetic.test=8",
    "data.batch_size=16",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
SMALL_CNN = ["model.net.channels=[8,16]", "model.net.dense=[32]"]
# The training command as a user types it, and the smallest run on the command line (subprocess tests).
TRAIN_COMMAND = [sys.executable, "-m", "fer_lightning.train"]
TINY_CLI = [
    "data=synthetic",
    "data.synthetic.train=10",
    "data.synthetic.val=4",
    "data.synthetic.test=4",
    "data.num_workers=0",
    *SMALL_CNN,
]
# A training run of a few seconds with a step logged each batch (resume and fault tests look at every step).
SMALL_RUN = [*SMALL_CNN, "data.synthetic.train=20", "data.batch_size=16", "trainer.log_every_n_steps=1"]
# FAST's settings for a run on data.root (files the test wrote) instead of the synthetic faces.
ON_FILES = [
    "data.cache_dir=null",
    "data.num_workers=0",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
PROBABILITIES = [f"p_{name}" for name in EMOTIONS]  # the probability columns of predictions.csv


def pytest_configure(config: pytest.Config) -> None:
    """The library chatter every command filters (core/console.py CHATTER) filtered from the test report too: pytest
    sets each test's warning filters anew, over the ones the package set when it was imported."""
    for pattern in chatter_patterns():
        config.addinivalue_line("filterwarnings", f"ignore:{pattern}")


def compose_cfg(output_dir: Path, *overrides: str, config: str = "train", fast: bool = True) -> DictConfig:
    """A composed config (train.yaml unless ``config`` says) with ${hydra:...} resolvable and outputs in
    ``output_dir``; ``fast`` puts the FAST overrides first."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config, overrides=[*(FAST if fast else []), *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """cfg(*overrides, config=..., fast=...) -> compose_cfg with outputs in tmp_path/run."""
    yield lambda *overrides, config="train", fast=True: compose_cfg(
        tmp_path / "run", *overrides, config=config, fast=fast
    )
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small scratch CNN trained on synthetic faces, shared by the tests that only need a checkpoint."""
    from fer_lightning.training.run import train

    run = tmp_path_factory.mktemp("trained") / "run"
    train(compose_cfg(run, *SMALL_CNN, "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "test=false"))
    GlobalHydra.instance().clear()
    return run / "checkpoints" / "last.ckpt"


def job_folder(sweep_dir: Path, number: int) -> Path:
    """A sweep job's folder, ``<number>`` or ``<number>_<swept values>``."""
    [folder] = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.split("_", 1)[0] == str(number)]
    return folder


def tensorboard_hparams(logdir: Path) -> api_pb2.Experiment:
    """TensorBoard's HPARAMS tab (its knobs and metric columns) as TensorBoard's own backend builds it for
    ``tensorboard --logdir logdir``."""
    runs = plugin_event_multiplexer.EventMultiplexer()
    runs.AddRunsFromDirectory(str(logdir))
    runs.Reload()
    provider = data_provider.MultiplexerDataProvider(runs, str(logdir))
    backend = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))
    request = context.RequestContext()
    return backend.experiment_from_metadata(
        request,
        "",
        True,
        backend.hparams_metadata(request, ""),
        backend.hparams_from_data_provider(request, "", limit=None),
    )


def final_run(run: Path) -> tuple[EventAccumulator, SessionStartInfo]:
    """A run's ``tensorboard`` folder, read as TensorBoard reads it: its numbers (the curves, test's points at the
    last epoch) and its HPARAMS session."""
    final = EventAccumulator(str(run / "tensorboard"))
    final.Reload()
    content = final.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return final, HParamsPluginData.FromString(content).session_start_info


def event_scalars(run: Path) -> EventAccumulator:
    """A run's TensorBoard events, read back as TensorBoard reads them."""
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return events


def random_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, len(EMOTIONS), n)


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, usages: list[str]) -> Path:
    """Kaggle's fer2013.csv layout."""
    lines = ["emotion,pixels,Usage"]
    lines += [f"{y},{' '.join(map(str, im.ravel()))},{u}" for im, y, u in zip(images, labels, usages, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_folders(root: Path, images: np.ndarray, labels: np.ndarray, usages: list[str]) -> Path:
    """The image-folder re-upload of the same faces: PNG (lossless), so both formats decode to the very same pixels;
    names keep the CSV origin."""
    for row, (image, label, usage) in enumerate(zip(images, labels, usages, strict=True)):
        split = "train" if usage == "Training" else "test"
        folder = root / split / EMOTIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{usage}_{row}.png")
    return root


def draw_portrait(
    height: int, width: int, centre: tuple[int, int], face_width: int, skin: int = 160, background: int = 200
) -> np.ndarray:
    """A frontal face drawn on a plain gray background: skin oval, hair, shaded eye sockets with eyes, brows,
    nose and mouth; blurred a little, as a camera would. OpenCV's frontal-face cascade finds it."""
    image = np.full((height, width), background, np.uint8)
    cx, cy = centre
    fw, fh = face_width, round(face_width * 1.3)
    stroke, aa = max(2, fw // 30), cv2.LINE_AA
    cv2.ellipse(image, (cx, cy - fh // 2 + fh // 12), (fw // 2 + 4, fh // 3), 0, 180, 360, 50, -1, aa)  # hair
    cv2.ellipse(image, (cx, cy), (fw // 2, fh // 2), 0, 0, 360, skin, -1, aa)
    eye_y = cy - fh // 10
    for side in (-1, 1):
        eye_x = cx + side * fw // 5
        cv2.ellipse(image, (eye_x, eye_y), (fw // 8, fw // 14), 0, 0, 360, skin - 60, -1, aa)  # socket shadow
        cv2.ellipse(image, (eye_x, eye_y), (fw // 12, fw // 24), 0, 0, 360, 230, -1, aa)
        cv2.circle(image, (eye_x, eye_y), fw // 28, 20, -1, aa)
        cv2.line(image, (eye_x - fw // 9, eye_y - fw // 7), (eye_x + fw // 9, eye_y - fw // 7), 40, stroke, aa)
    cv2.line(image, (cx, eye_y + fw // 20), (cx - fw // 20, cy + fh // 8), skin - 50, max(2, fw // 40), aa)  # nose
    cv2.ellipse(image, (cx, cy + fh // 8), (fw // 10, fw // 25), 0, 0, 360, skin - 40, -1, aa)
    cv2.ellipse(image, (cx, cy + fh // 4), (fw // 5, fw // 16), 0, 0, 180, 60, stroke, aa)  # smile
    return cv2.GaussianBlur(image, (0, 0), max(1.0, fw / 80))


def in_colour(gray: np.ndarray) -> np.ndarray:
    """The gray drawing tinted warm, as BGR: photos are colour."""
    return np.clip(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR) * np.array([0.85, 1.0, 1.15]), 0, 255).astype(np.uint8)


@pytest.fixture
def imagenet_resnet50(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """A stand-in 'downloaded' ResNet50 ImageNet file in TORCH_HOME, where the weights API would leave it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    state = models.resnet50().state_dict()
    file = weights_file("ResNet50_Weights.IMAGENET1K_V2")
    file.parent.mkdir(parents=True)
    torch.save(state, file)
    return state
