"""The commands: every entry point composes its config and is a console script; conventions from
lightning-hydra-template: debug= presets train, FER_DATA_ROOT sets data.root, --help names the approaches."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN

PRESETS = sorted(p.stem for p in (CONFIG_DIR / "debug").glob("*.yaml") if p.stem != "default")


def test_every_debug_preset_is_tested() -> None:
    assert PRESETS == ["fast_dev_run", "limit", "overfit", "profiler"]


@pytest.mark.parametrize("preset", PRESETS)
def test_debug_preset_composes_and_trains_on_synthetic_faces(make_cfg, preset: str) -> None:
    # The preset's own epochs stand (the FAST overrides come first); few faces keep each run to seconds.
    cfg = make_cfg(
        f"debug={preset}", *SMALL_CNN, "data.synthetic.train=24", "data.synthetic.val=8", "data.synthetic.test=8"
    )
    assert cfg.task_name == "debug" and cfg.data.num_workers == 0
    expected = {
        "fast_dev_run": ("fast_dev_run", True),
        "limit": ("limit_train_batches", 5),
        "overfit": ("overfit_batches", 3),
        "profiler": ("max_epochs", 1),
    }[preset]
    assert cfg.trainer[expected[0]] == expected[1]
    if preset == "overfit":
        assert cfg.callbacks.early_stopping is None  # switched off: val is expected to get worse
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"]) and metrics["train/loss"] > 0  # trained, and the loss is a number
    if preset == "profiler":
        assert (Path(cfg.paths.output_dir) / "fit-profile.txt").is_file()


def test_fer_data_root_environment_variable_sets_data_root(
    make_cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FER_DATA_ROOT", str(tmp_path / "faces"))
    assert make_cfg(fast=False).data.root == str(tmp_path / "faces")
    assert make_cfg("data.root=/elsewhere", fast=False).data.root == "/elsewhere"  # the command line still wins
    monkeypatch.delenv("FER_DATA_ROOT")
    assert make_cfg(fast=False).data.root == "data/fer2013"


def test_help_names_the_four_approaches_and_the_debug_presets(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fer_lightning.train", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    for words in (
        "1. scratch CNN",
        "2. scratch CNN + augmentation",
        "VGG16",
        "ResNet50",
        "scratch_aug",
        "debug=fast_dev_run",
        "FER_DATA_ROOT",
        "data.root",
        "model.lr",
        "-sc install=bash",
    ):
        assert words in out.stdout, words


ENTRY_POINTS = {  # module -> its config, as pyproject.toml's console scripts and python -m name them
    "train": "train",
    "eval": "eval",
    "predict": "predict",
    "export": "export",
    "ensemble": "ensemble",
    "analyze": "analyze",
    "bench": "bench",
    "leaderboard": "leaderboard",
    "curves": "curves",
    "detection_bench": "detection_bench",
    "serve": "serve",
    "serve_bench": "serve_bench",
}
TOOLS = {"detection_bench", "serve_bench"}  # measurements for the project's own docs: no console script


def test_every_console_script_is_an_entry_points_main() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    scripts = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {f"fer-{name}": f"fer_lightning.{name}:main" for name in ENTRY_POINTS if name not in TOOLS}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_composes_its_config(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [f"fer_lightning.{name}", "--cfg", "job"])
    GlobalHydra.instance().clear()
    importlib.import_module(f"fer_lightning.{name}").main()  # what python -m fer_lightning.<name> --cfg job runs
    GlobalHydra.instance().clear()
    assert f"task_name: {ENTRY_POINTS[name]}" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())  # --cfg job runs nothing


def test_importing_the_package_asks_no_server() -> None:
    # A fresh interpreter where any URL opened ends it: albumentations' release check (on import) would.
    code = (
        "import urllib.request\n"
        "def refuse(self, url, *args, **kwargs): raise SystemExit(f'asked {url}')\n"
        "urllib.request.OpenerDirector.open = refuse\n"
        "import fer_lightning.data.transforms\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "NO_ALBUMENTATIONS_UPDATE"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
