"""An ensemble checkpoint is one model everywhere: the mean of its members' log-probabilities, loaded, exported
and refused like any checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_lightning.core.checkpoints import CONFIG_KEY, read_checkpoint, save_whole
from fer_lightning.models.ensemble import write_ensemble
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.export import export
from fer_lightning.serving.recognizer import EmotionRecognizer
from tests.serving.test_serving import faces


def second_member(trained_checkpoint: Path, path: Path, **data: object) -> Path:
    """Another trained net: the checkpoint's weights moved by noise (``data``: keys of its data config changed)."""
    checkpoint = read_checkpoint(trained_checkpoint)
    generator = torch.Generator().manual_seed(3)
    checkpoint["state_dict"] = {
        key: value + 0.2 * value.std() * torch.randn(value.shape, generator=generator)
        if value.is_floating_point() and value.ndim >= 2
        else value
        for key, value in checkpoint["state_dict"].items()
    }
    checkpoint[CONFIG_KEY]["data"].update(data)
    save_whole(checkpoint, path)
    return path


def test_an_ensemble_is_the_mean_of_its_members_log_probabilities(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    other = second_member(trained_checkpoint, tmp_path / "other.ckpt")
    file = write_ensemble(
        make_cfg(
            f"members=[{trained_checkpoint},{other}]", f"file={tmp_path / 'pair.ckpt'}", config="ensemble", fast=False
        )
    )
    ensemble = LoadedCheckpoint.load(file, device="cpu")
    members = [LoadedCheckpoint.load(path, device="cpu").model for path in (trained_checkpoint, other)]
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        expected = torch.stack([member(x).log_softmax(-1) for member in members]).mean(0)
        got = ensemble.model(x)
        assert not torch.allclose(members[0](x), members[1](x), atol=1e-3)  # two different nets
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert read_checkpoint(file)["fer_lightning_members"] == [str(trained_checkpoint), str(other)]
    # predict's API reads it as any checkpoint
    probabilities = EmotionRecognizer.from_checkpoint(
        file, overrides=["detect_faces=false", "device=cpu"]
    ).probabilities(faces(4))
    assert probabilities.shape == (4, 7) and np.allclose(probabilities.sum(1), 1, atol=1e-5)


def test_an_int8_compact_ensemble_is_half_the_size_and_predicts_as_the_checkpoint(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    other = second_member(trained_checkpoint, tmp_path / "other.ckpt")
    pair = write_ensemble(
        make_cfg(
            f"members=[{trained_checkpoint},{other}]", f"file={tmp_path / 'pair.ckpt'}", config="ensemble", fast=False
        )
    )
    sizes = {}
    for weights in ("float16", "int8"):
        file = export(
            make_cfg(
                f"ckpt_path={pair}",
                "export.format=weights",
                f"export.weights={weights}",
                f"export.file={tmp_path / weights}.pt",
                config="export",
                fast=False,
            )
        )
        sizes[weights] = file.stat().st_size
    stored = torch.load(tmp_path / "int8.pt", weights_only=True)
    convs = [key for key, value in stored["state_dict"].items() if value.ndim == 4]
    assert convs and all(stored["state_dict"][key].dtype == torch.int8 for key in convs)
    assert sizes["int8"] < 0.75 * sizes["float16"]  # the small test net's BatchNorm and buffers stay float16
    expected = EmotionRecognizer.from_checkpoint(pair, overrides=["detect_faces=false", "device=cpu"])
    got = EmotionRecognizer.from_checkpoint(tmp_path / "int8.pt", overrides=["detect_faces=false", "device=cpu"])
    np.testing.assert_allclose(got.probabilities(faces()), expected.probabilities(faces()), atol=1e-2)


def test_members_trained_on_another_input_are_refused(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    other = second_member(trained_checkpoint, tmp_path / "other.ckpt", crop_size=40)
    cfg = make_cfg(f"members=[{trained_checkpoint},{other}]", config="ensemble", fast=False)
    with pytest.raises(ValueError, match=r"other.ckpt was trained with data.crop_size=40, .* the same input"):
        write_ensemble(cfg)
    assert not list(Path(cfg.paths.output_dir).glob("*.ckpt"))


def test_a_member_that_names_code_is_refused_on_load(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    other = second_member(trained_checkpoint, tmp_path / "other.ckpt")
    pair = write_ensemble(
        make_cfg(
            f"members=[{trained_checkpoint},{other}]", f"file={tmp_path / 'pair.ckpt'}", config="ensemble", fast=False
        )
    )
    checkpoint = read_checkpoint(pair)
    checkpoint[CONFIG_KEY]["model"]["net"]["members"][1]["_target_"] = "builtins.exec"
    save_whole(checkpoint, pair)
    with pytest.raises(ValueError, match=r"model.net.members.1._target_='builtins.exec'.*nothing was built"):
        LoadedCheckpoint.load(pair, device="cpu")


def test_one_member_is_one_line_and_exit_status_2(trained_checkpoint: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fer_lightning.ensemble",
        f"members=[{trained_checkpoint}]",
        f"hydra.run.dir={tmp_path}",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    text = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in text, text
    assert [line for line in text.splitlines() if "[ERROR]" in line] == [
        next(line for line in text.splitlines() if "an ensemble needs two or more checkpoints" in line)
    ]
    assert not list(tmp_path.glob("*.ckpt"))
