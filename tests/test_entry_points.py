"""The commands: every entry point composes its config and is a console script; conventions from
lightning-hydra-template: debug= presets train, FER_DATA_ROOT sets data.root, --help names the approaches; every other
command's --help is its own page (usage, its keys, examples)."""

from __future__ import annotations

import importlib
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

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


def help_from_the_command_line(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m fer_lightning.<command> --help`` as a user types it, checked to succeed."""
    out = subprocess.run(
        [sys.executable, "-m", f"fer_lightning.{command}", "--help"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_help_names_the_four_approaches_and_the_debug_presets(tmp_path: Path) -> None:
    out = help_from_the_command_line("train", tmp_path)
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


# --help: each command's own page (hydra.help.template in conf/<name>.yaml), not Hydra's generic one.
OTHER_COMMANDS = sorted(set(ENTRY_POINTS) - {"train"})
NOT_ON_THE_PAGE = {("serve", "input")}  # serve.yaml: "not used: images come in requests"


def help_page(name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    """What ``python -m fer_lightning.<name> --help`` prints, run in this process: Hydra renders the page from the
    composed cfg.hydra.help.template on the same path as from the command line."""
    monkeypatch.setattr(sys, "argv", [f"fer_lightning.{name}", "--help"])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"fer_lightning.{name}").main()
    GlobalHydra.instance().clear()
    page = capsys.readouterr().out
    assert done.value.code == 0, page
    return page


def page_section(page: str, title: str) -> str:
    assert f"== {title} ==\n" in page, page
    return page.split(f"== {title} ==\n", 1)[1].split("\n\n", 1)[0]


def own_keys(name: str) -> list[str]:
    """The keys a command's own config file sets (not Hydra's, not a ``_target_`` section a user does not set)."""
    config = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    return [
        key
        for key, value in config.items()
        if key not in ("defaults", "hydra", "task_name")
        and not (isinstance(value, dict) and "_target_" in value)
        and (name, key) not in NOT_ON_THE_PAGE
    ]


def has_key(config: object, key: str) -> bool:
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return False
        config = config[part]
    return True


@pytest.mark.parametrize("name", OTHER_COMMANDS)
def test_every_commands_help_is_its_own_page(
    name: str, make_cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    page = help_page(name, monkeypatch, capsys)
    assert page.startswith(f"python -m fer_lightning.{name} "), page[:300]  # the usage line
    examples = page_section(page, "Examples").splitlines()
    assert sum(line.strip().startswith(f"python -m fer_lightning.{name}") for line in examples) >= 2, examples
    assert "== Config groups" not in page and "model/scheduler" not in page and "task_name:" not in page  # train's
    keys = page_section(page, "Keys")
    for key in own_keys(name):  # every key of its own config, with its meaning
        assert re.search(rf"(?<![\w.]){key}[=.]", keys), f"{name}: {key} is not on its --help page"
    config = OmegaConf.to_container(make_cfg(config=name, fast=False), resolve=False)
    for key in re.findall(r"(?:^|(?<=\s))([a-z_]\w*(?:[./]\w+)*)=", keys, flags=re.M):  # and no key it lacks
        assert "/" in key or (CONFIG_DIR / key).is_dir() or has_key(config, key), f"{name} has no key {key}"
    for group, options in re.findall(r"(?:^|(?<=\s))([a-z_]\w*(?:/\w+)*)=(\w+(?:\|\w+)+)", keys, flags=re.M):
        if (CONFIG_DIR / group).is_dir():  # a group's options as they are in conf/<group>/
            assert set(options.split("|")) <= {p.stem for p in (CONFIG_DIR / group).glob("*.yaml")}, group
    assert not list(tmp_path.iterdir())  # --help runs nothing


def test_predict_help_from_the_command_line(tmp_path: Path) -> None:
    out = help_from_the_command_line("predict", tmp_path)
    assert out.stdout.startswith("python -m fer_lightning.predict input=<image|folder|video|camera index>")
    assert "input=PATH|0" in out.stdout and "predict/detector=auto|haar|ssd" in out.stdout
    assert "  python -m fer_lightning.predict input=photo.jpg\n" in out.stdout
    assert "input: ???" not in out.stdout and "model/scheduler" not in out.stdout  # Hydra's generic page
    assert not list(tmp_path.iterdir())
