"""An ensemble checkpoint is one model everywhere: the mean of its members' log-probabilities, loaded, exported
and refused like any checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_lightning.core.checkpoints import CONFIG_KEY, TEMPERATURE_KEY, read_checkpoint, save_whole, store_temperature
from fer_lightning.evaluation.saliency import gradcam_maps
from fer_lightning.models.ensemble import MeanOfNets, write_ensemble
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.export import export
from fer_lightning.training.resume import resume_state
from fer_lightning.training.run import train
from tests.serving.test_serving import faces, recognizer


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


def pair_with_second_member(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(the second member, the ensemble of the checkpoint and it in tmp_path/pair.ckpt)."""
    other = second_member(trained_checkpoint, tmp_path / "other.ckpt")
    cfg = make_cfg(
        f"members=[{trained_checkpoint},{other}]", f"file={tmp_path / 'pair.ckpt'}", config="ensemble", fast=False
    )
    return other, write_ensemble(cfg)


def test_an_ensemble_is_the_mean_of_its_members_log_probabilities(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    other, file = pair_with_second_member(make_cfg, trained_checkpoint, tmp_path)
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
    probabilities = recognizer(file).probabilities(faces(4))
    assert probabilities.shape == (4, 7) and np.allclose(probabilities.sum(1), 1, atol=1e-5)


def test_an_int8_compact_ensemble_is_half_the_size_and_predicts_as_the_checkpoint(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    other, pair = pair_with_second_member(make_cfg, trained_checkpoint, tmp_path)
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
    expected = recognizer(pair)
    got = recognizer(tmp_path / "int8.pt")
    np.testing.assert_allclose(got.probabilities(faces()), expected.probabilities(faces()), atol=1e-2)
    size = (tmp_path / "int8.pt").stat().st_size
    store_temperature(tmp_path / "int8.pt", 1.5)  # what eval.calibrate=true does: the file stays int8
    stored = torch.load(tmp_path / "int8.pt", weights_only=True)
    assert stored[TEMPERATURE_KEY] == 1.5 and stored["state_dict"][convs[0]].dtype == torch.int8
    assert abs((tmp_path / "int8.pt").stat().st_size - size) < 1000
    assert stored["fer_lightning_members"] == [str(trained_checkpoint), str(other)]


def test_an_exported_ensembles_card_names_its_members(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    other, pair = pair_with_second_member(make_cfg, trained_checkpoint, tmp_path)
    torchscript = ("export.format=torchscript",)
    cfg = make_cfg(
        f"ckpt_path={pair}", *torchscript, f"export.file={tmp_path / 'pair.pt'}", config="export", fast=False
    )
    file = export(cfg)
    stored = {"classes.json": ""}
    torch.jit.load(str(file), _extra_files=stored)
    for card in (json.loads(stored["classes.json"]), json.loads(file.with_name("pair.pt.classes.json").read_text())):
        assert card["members"] == [str(trained_checkpoint), str(other)] and card["checkpoint"] == str(pair)
    single = export(
        make_cfg(
            f"ckpt_path={trained_checkpoint}",
            *torchscript,
            f"export.file={tmp_path / 'one.pt'}",
            config="export",
            fast=False,
        )
    )
    assert "members" not in json.loads(single.with_name("one.pt.classes.json").read_text())


def test_a_members_entry_that_is_not_a_list_of_names_is_refused(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    _, pair = pair_with_second_member(make_cfg, trained_checkpoint, tmp_path)
    checkpoint = read_checkpoint(pair)
    checkpoint["fer_lightning_members"] = {"a": 1}
    save_whole(checkpoint, pair)
    with pytest.raises(ValueError, match=r"pair.ckpt: fer_lightning_members holds \{'a': 1\}, expected a list"):
        LoadedCheckpoint.load(pair, device="cpu")


def hostile(trained_checkpoint: Path, path: Path) -> Path:
    """A member whose stored net names code to run."""
    checkpoint = read_checkpoint(trained_checkpoint)
    checkpoint[CONFIG_KEY]["model"]["net"]["_target_"] = "builtins.exec"
    save_whole(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("members", "error"),
    [
        (lambda ckpt, tmp: str(ckpt), r"members=.*last.ckpt: an ensemble needs two or more checkpoints, as a list"),
        (lambda ckpt, tmp: [ckpt, tmp / "missing.ckpt"], r"members\[1\]: ckpt_path=.*missing.ckpt does not exist"),
        (lambda ckpt, tmp: [ckpt, ckpt], r"members\[1\]=.*last.ckpt is .*, already a member"),
        (
            lambda ckpt, tmp: [ckpt, second_member(ckpt, tmp / "other.ckpt", crop_size=40)],
            r"members\[1\]=.*other.ckpt was trained with data.crop_size=40, members\[0\] with None: .* same input",
        ),
        (
            lambda ckpt, tmp: [ckpt, second_member(ckpt, tmp / "other.ckpt", split_seed=7)],
            r"data.split_seed=7, members\[0\] with 42: .* same input and val split",
        ),
        (lambda ckpt, tmp: [ckpt, hostile(ckpt, tmp / "hostile.ckpt")], r"model.net._target_='builtins.exec'.*nothing"),
    ],
    ids=["not_a_list", "missing", "twice", "other_crop", "other_val_split", "names_code"],
)
def test_members_that_cannot_make_one_model_are_named_and_nothing_is_written(
    make_cfg, trained_checkpoint: Path, tmp_path: Path, members, error: str
) -> None:
    given = members(trained_checkpoint, tmp_path)
    listed = f"[{','.join(map(str, given))}]" if isinstance(given, list) else given
    cfg = make_cfg(f"members={listed}", f"file={tmp_path / 'out' / 'pair.ckpt'}", config="ensemble", fast=False)
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        write_ensemble(cfg)
    assert not (tmp_path / "out").exists()


def test_an_ensemble_is_not_a_member(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    _, pair = pair_with_second_member(make_cfg, trained_checkpoint, tmp_path)
    cfg = make_cfg(f"members=[{trained_checkpoint},{pair}]", config="ensemble", fast=False)
    with pytest.raises(ValueError, match=r"members\[1\]=.*pair.ckpt is itself an ensemble: give its members"):
        write_ensemble(cfg)
    with pytest.raises(ValueError, match=r"pair.ckpt holds weights only .* a run resumes from a training checkpoint"):
        resume_state(str(pair), str(tmp_path), "fer_lightning.models.cnn.scratch_cnn")


def test_a_transfer_net_and_a_scratch_cnn_make_one_ensemble(make_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    train(make_cfg("model=resnet50", "model.pretrained=false", "debug=limit", "data.batch_size=8", "test=false"))
    resnet = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cfg = make_cfg(
        f"members=[{trained_checkpoint},{resnet}]", f"file={tmp_path / 'mixed.ckpt'}", config="ensemble", fast=False
    )
    ensemble = LoadedCheckpoint.load(write_ensemble(cfg), device="cpu")
    members = [LoadedCheckpoint.load(path, device="cpu").model.net for path in (trained_checkpoint, resnet)]
    images, targets = torch.randn(3, 1, 48, 48), torch.tensor([0, 3, 6])
    with torch.no_grad():
        expected = torch.stack([member(images).log_softmax(-1) for member in members]).mean(0)
        torch.testing.assert_close(ensemble.model(images), expected, atol=1e-5, rtol=1e-5)
    maps = gradcam_maps(ensemble.model.net, images, targets)  # each member's own last conv: a ResNet block, a Conv2d
    assert maps.shape == (3, 48, 48) and np.isfinite(maps).all() and np.allclose(maps.reshape(3, -1).max(1), 1)


def test_an_ensembles_gradcam_is_the_mean_of_its_members(trained_checkpoint: Path, tmp_path: Path) -> None:
    members = [
        LoadedCheckpoint.load(path, device="cpu").model.net
        for path in (trained_checkpoint, second_member(trained_checkpoint, tmp_path / "other.ckpt"))
    ]
    images, targets = torch.randn(3, 1, 48, 48), torch.tensor([0, 3, 6])
    own = [gradcam_maps(member, images, targets) for member in members]
    assert not np.allclose(own[0], own[1], atol=1e-3)
    mean = (own[0] + own[1]) / 2
    expected = mean / mean.reshape(3, -1).max(1)[:, None, None]
    np.testing.assert_allclose(gradcam_maps(MeanOfNets(members), images, targets), expected, atol=1e-5)


def test_an_ensemble_whose_member_names_code_is_refused_on_load(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    _, pair = pair_with_second_member(make_cfg, trained_checkpoint, tmp_path)
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


def test_members_of_different_precisions_make_an_fp32_ensemble(
    make_cfg, trained_checkpoint: Path, tmp_path: Path
) -> None:
    members = []
    for name, precision in (("bf16.ckpt", "bf16-mixed"), ("fp32.ckpt", "32-true")):  # the first member's is not fp32
        checkpoint = read_checkpoint(second_member(trained_checkpoint, tmp_path / name))
        checkpoint[CONFIG_KEY]["trainer"]["precision"] = precision
        save_whole(checkpoint, tmp_path / name)
        members.append(tmp_path / name)
    pair = write_ensemble(make_cfg(f"members=[{members[0]},{members[1]}]", config="ensemble", fast=False))
    assert LoadedCheckpoint.load(pair, device="cpu").config.trainer.precision == "32-true"
