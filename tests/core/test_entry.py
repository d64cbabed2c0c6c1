"""Every command's main (core/entry.py): what Hydra finds wrong while it composes the config, and a key a section's
target does not take, are one line naming the key or the option and what there is instead, exit status 2;
HYDRA_FULL_ERROR=1 still gives the traceback. A mandatory key left out is one line too, and a refused run leaves no
run folder behind."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.entry import RunFolder, take_back_run_folder
from fer_lightning.core.errors import EXIT_BAD_INPUT, not_given
from fer_lightning.core.validation import check_arguments
from tests.conftest import TINY_CLI, TRAIN_COMMAND

# The commands built by entry_point (fer_lightning/<name>.py: main = entry_point("<name>", ...)).
COMMANDS = sorted(
    path.stem
    for path in (CONFIG_DIR.parent / "fer_lightning").glob("*.py")
    if f'main = entry_point("{path.stem}",' in path.read_text()
)


def run_main(name: str, *arguments: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> list[str]:
    """``python -m fer_lightning.<name> <arguments>`` in this process, for arguments refused while composing: the
    exit status asserted 2, the lines it wrote returned."""
    monkeypatch.setattr(sys, "argv", [f"fer_lightning.{name}", *arguments])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"fer_lightning.{name}").main()
    GlobalHydra.instance().clear()
    out = capsys.readouterr()
    assert exit_info.value.code == EXIT_BAD_INPUT, out.out + out.err
    return [line for line in (out.out + out.err).splitlines() if line.strip()]


def test_the_ten_commands_are_built_by_entry_point() -> None:
    ten = {"train", "eval", "predict", "export", "ensemble", "analyze", "bench", "leaderboard", "curves"}
    assert ten | {"detection_bench"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_names_a_key_that_does_not_exist_in_one_line(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    [line] = run_main(name, "paths.rooot=x", monkeypatch=monkeypatch, capsys=capsys)
    assert "[ERROR]" in line and line.endswith("paths.rooot: no such key (did you mean paths.root?)"), line
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_option_a_group_lacks_and_an_override_hydra_cannot_parse_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    [line] = run_main("train", "model=vgg19", monkeypatch=monkeypatch, capsys=capsys)
    assert line.endswith("model=vgg19: model has no option vgg19; its options: cnn, resnet50, vgg16"), line
    [line] = run_main("train", "model/optimizer=adamx", monkeypatch=monkeypatch, capsys=capsys)
    assert line.endswith("model/optimizer=adamx: model/optimizer has no option adamx; its options: adamw, sgd")
    [line] = run_main("train", "model.lrr=0.1", monkeypatch=monkeypatch, capsys=capsys)
    assert line.endswith("model.lrr: no such key (did you mean model.lr?)"), line
    [line] = run_main("train", "data.batch_size=16", "model.lr=[", monkeypatch=monkeypatch, capsys=capsys)
    assert "model.lr=[: not an override Hydra can parse (no viable alternative at input '[')" in line, line
    [line] = run_main("predict", "ckpt_path=x.ckpt", monkeypatch=monkeypatch, capsys=capsys)  # no input=
    assert line.endswith("input is not given (??? in the config): add input=<value> to the command line"), line


def command(*arguments: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TRAIN_COMMAND, *arguments, f"hydra.run.dir={cwd / 'run'}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def one_line(out: subprocess.CompletedProcess) -> str:
    text = out.stdout + out.stderr
    assert out.returncode == EXIT_BAD_INPUT and "Traceback" not in text, text
    [line] = [line for line in text.splitlines() if "[ERROR]" in line]
    return line


def test_an_added_key_no_constructor_takes_and_a_bad_seed_are_named_before_any_work(tmp_path: Path) -> None:
    line = one_line(command(*TINY_CLI, "+model.lrr=0.1", cwd=tmp_path))
    assert line.endswith(
        "model.lrr: fer_lightning.models.classifier.EmotionClassifier takes no argument lrr (did you mean model.lr?)"
    ), line
    line = one_line(command(*TINY_CLI, "seed=abc", cwd=tmp_path))
    assert line.endswith("seed='abc': expected an integer"), line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_hydra_full_error_still_gives_the_traceback(tmp_path: Path) -> None:
    out = command("model=vgg19", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert out.returncode == 1 and "Traceback" in out.stderr and "MissingConfigException" in out.stderr, out.stderr


OPTIONS = {  # every option of the groups a training run is made of, each composed once
    group: sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml") if p.stem != "default" or group == "trainer")
    for group in ("model", "model/optimizer", "model/scheduler", "experiment", "trainer", "debug")
}


@pytest.mark.parametrize(
    "override",
    [f"{group}={option}" for group, options in OPTIONS.items() for option in options]
    + ["+callbacks=[default,ema,freeze_backbone]"],
)
def test_every_shipped_train_config_passes_the_argument_check(make_cfg, override: str) -> None:
    cfg = make_cfg(override, fast=False)
    check_arguments(OmegaConf.to_container(cfg, resolve=False)["model"])
    check_arguments({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"})


@pytest.mark.parametrize("name", ["eval", "predict", "export", "ensemble", "analyze", "bench", "leaderboard", "curves"])
def test_every_other_commands_config_passes_the_argument_check(make_cfg, name: str) -> None:
    for extra in (["predict/detector=haar"], ["predict/detector=ssd"]) if name == "predict" else ([],):
        cfg = make_cfg(*extra, config=name, fast=False)
        check_arguments({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"})


# Mandatory keys (??? in a command's own config) and bad values, said in one line before any work; the run folder
# Hydra made for the refused run is taken back (core/entry.py's RunFolder), every other folder stays.
REQUIRED = {
    name: [key for key, value in yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()).items() if value == "???"]
    for name in COMMANDS
}
COMMANDS_LOOP = """
import importlib, json, sys
from hydra.core.global_hydra import GlobalHydra
for argv in json.loads(sys.argv[1]):
    sys.argv = [f"fer_lightning.{argv[0]}", *argv[1:]]
    GlobalHydra.instance().clear()
    print("@@ start", flush=True)
    try:
        importlib.import_module(f"fer_lightning.{argv[0]}").main()
        code = 0
    except SystemExit as done:
        code = done.code
    print(f"@@ exit {code}", flush=True)
"""


def test_the_mandatory_keys_are_those_of_the_four_commands_that_need_one() -> None:
    assert {name: keys for name, keys in REQUIRED.items() if keys and name != "detection_bench"} == {
        "predict": ["input"],
        "leaderboard": ["sweep_dir"],
        "ensemble": ["members"],
        "curves": ["runs"],
    }


def test_a_missing_or_wrong_mandatory_key_is_one_line_and_leaves_no_run_folder(tmp_path: Path) -> None:
    # One interpreter runs every command's main in turn, as python -m would (each start would cost seconds).
    earlier = tmp_path / "outputs" / "predict" / "runs" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "predictions.csv").write_text("file\n")
    empty_sweep = tmp_path / "outputs" / "train" / "multiruns" / "empty"
    empty_sweep.mkdir(parents=True)
    before = sorted(p for p in (tmp_path / "outputs").rglob("*") if p.is_dir())
    nope = tmp_path / "nope"
    cases = [[name] for name, keys in REQUIRED.items() if keys] + [
        ["leaderboard", f"sweep_dir={nope}"],
        ["leaderboard", f"sweep_dir={empty_sweep}"],  # there before: never taken back, though it holds only the log
        ["curves", f"runs=[{nope}]"],
        ["predict", f"input={nope}.jpg"],
        ["ensemble", f"members=[{nope}.ckpt,{nope}.ckpt]"],
        ["train", *TINY_CLI, "model.lr=abc"],
        ["train", f"data.root={nope}"],  # said before the loggers make their folders
    ]
    out = subprocess.run(
        [sys.executable, "-u", "-c", COMMANDS_LOOP, json.dumps(cases)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    runs = out.stdout.split("@@ start\n")[1:]
    assert len(runs) == len(cases), out.stdout[-3000:]
    expected = [not_given(keys[0]) for keys in REQUIRED.values() if keys] + [
        f"{nope} holds no Hydra job folders",
        f"{empty_sweep} holds no Hydra job folders",
        f"{nope}: no tensorboard/ folder",
        f"input={nope}.jpg does not exist",
        f"members[0]: ckpt_path={nope}.ckpt does not exist",
        "model.lr='abc': expected a number",
        f"data.root={nope} does not exist",
    ]
    for case, run, words in zip(cases, runs, expected, strict=True):
        assert run.rstrip().endswith(f"@@ exit {EXIT_BAD_INPUT}") and "Traceback" not in run, (case, run)
        [line] = [line for line in run.splitlines() if "[ERROR]" in line]
        assert words in line, (case, line)
    assert sorted(p for p in (tmp_path / "outputs").rglob("*") if p.is_dir()) == before  # no run folder left
    assert not nope.exists() and (earlier / "predictions.csv").is_file()
    assert [p.name for p in empty_sweep.iterdir()] == ["leaderboard.log"]


def test_a_run_folder_is_taken_back_only_when_the_run_made_it_and_wrote_nothing_else(
    make_cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(RunFolder, "made", [])
    (tmp_path / "outputs" / "eval").mkdir(parents=True)  # another command's: stays

    def started(*overrides: str) -> Path:
        """The run folder as Hydra makes it after RunFolder has seen the config: .hydra/ and the log."""
        cfg = make_cfg(*overrides, config="predict", fast=False)
        RunFolder().on_run_start(config=cfg)
        folder = Path(str(OmegaConf.select(cfg, "hydra.run.dir"))).absolute()
        (folder / ".hydra").mkdir(parents=True, exist_ok=True)
        (folder / ".hydra" / "config.yaml").write_text("input: x\n")
        (folder / "predict.log").write_text("")
        return folder

    folder = started()
    assert RunFolder.made == [folder, tmp_path / "outputs" / "predict"]
    take_back_run_folder()
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["eval"]  # and outputs/predict/runs/ it made
    folder = started()
    (folder / "predictions.csv").write_text("file\n")  # the run did something: kept
    take_back_run_folder()
    assert (folder / "predictions.csv").is_file()
    given = tmp_path / "given"
    given.mkdir()
    started(f"hydra.run.dir={given}")  # there before (a resumed run's, one given again): never taken back
    assert RunFolder.made == []
    take_back_run_folder()
    assert (given / "predict.log").is_file()
