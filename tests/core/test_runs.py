"""Where runs and checkpoints are: ckpt_path=last and the folder a resumed run writes to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fer_lightning.core import runs
from fer_lightning.core.errors import RunFolderInUse
from fer_lightning.core.runs import find_checkpoint, own_run_folder, run_dir


def fake_run(root: Path, name: str, net: str, mtime: float) -> Path:
    last = root / "train" / "runs" / name / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    (last.parent.parent / ".hydra").mkdir()
    (last.parent.parent / ".hydra" / "config.yaml").write_text(f"model:\n  net:\n    _target_: {net}\n")
    os.utime(last, (mtime, mtime))
    return last


def test_ckpt_path_last_is_the_newest_of_the_same_model_under_the_configured_root(tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    cnn = fake_run(root, "a", "fer_lightning.models.cnn.scratch_cnn", 1000)
    resnet = fake_run(root, "b", "fer_lightning.models.transfer.resnet50", 2000)  # newer, another model
    assert find_checkpoint("last", root, "fer_lightning.models.cnn.scratch_cnn") == cnn
    assert find_checkpoint("last", root) == resnet
    with pytest.raises(FileNotFoundError, match="no training run of a .*vgg16 model") as error:
        find_checkpoint("last", root, "fer_lightning.models.transfer.vgg16")
    assert str(cnn) in str(error.value) and str(resnet) in str(error.value)  # the candidates are listed
    assert run_dir("last", str(root), "fer_lightning.models.cnn.scratch_cnn", "fresh") == str(cnn.parent.parent)


def test_a_checkpoint_outside_a_run_folder_starts_a_new_run(tmp_path: Path) -> None:
    loose = tmp_path / "downloads" / "model.ckpt"
    loose.parent.mkdir()
    loose.write_bytes(b"x")
    assert run_dir(str(loose), str(tmp_path), "any", "outputs/train/runs/new") == "outputs/train/runs/new"


def test_the_run_dir_resolver_never_raises_and_never_picks_a_run_of_another_net(tmp_path: Path) -> None:
    cnn = fake_run(tmp_path, "a", "fer_lightning.models.cnn.scratch_cnn", 1000)
    vgg = "fer_lightning.models.transfer.vgg16"
    assert run_dir("last", str(tmp_path), vgg, "fresh") == "fresh"  # no vgg16 run: the task says so
    assert run_dir(str(tmp_path / "missing.ckpt"), str(tmp_path), vgg, "fresh") == "fresh"
    assert run_dir(str(tmp_path), str(tmp_path), vgg, "fresh") == "fresh"  # a directory
    assert run_dir(str(cnn), str(tmp_path), vgg, "fresh") == "fresh"  # refused later: its folder left alone
    assert run_dir(str(cnn), str(tmp_path), "fer_lightning.models.cnn.scratch_cnn", "fresh") == str(cnn.parent.parent)


def test_a_run_folder_is_owned_by_one_live_run_and_a_dead_runs_lock_is_no_lock(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / runs.LOCK_NAME).write_text("12345\n")  # left by a killed run: its flock ended with it
    own_run_folder(folder)
    try:
        assert (folder / runs.LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(
            RunFolderInUse, match=f"run folder {folder} is in use by another run \\(pid {os.getpid()}\\)"
        ):
            own_run_folder(folder)  # flock is per open file: a second open in this process is refused too
    finally:
        runs._held.pop().close()
    own_run_folder(folder)  # released: free again
    runs._held.pop().close()


def test_a_resume_with_another_net_config_does_not_write_into_the_run(tmp_path: Path) -> None:
    cnn = fake_run(tmp_path, "a", "fer_lightning.models.cnn.scratch_cnn", 1000)
    saved = "model:\n  net:\n    _target_: fer_lightning.models.cnn.scratch_cnn\n    channels: [8, 16]\n"
    (cnn.parent.parent / ".hydra" / "config.yaml").write_text(saved)
    same = OmegaConf.create({"_target_": "fer_lightning.models.cnn.scratch_cnn", "channels": [8, 16]})
    other = OmegaConf.create({"_target_": "fer_lightning.models.cnn.scratch_cnn", "channels": [8, 32]})
    assert run_dir("last", str(tmp_path), same, "fresh") == str(cnn.parent.parent)
    assert run_dir("last", str(tmp_path), other, "fresh") == "fresh"
