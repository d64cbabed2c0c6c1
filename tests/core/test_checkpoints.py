"""Checkpoint files: written whole or not at all, a bad or truncated one named in one line; int8 weights."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fer_lightning.core.checkpoints import (
    INT8_SCALES_KEY,
    AtomicCheckpointIO,
    CheckpointWriteError,
    compact_checkpoint,
    dequantize,
    quantize_int8,
    read_checkpoint,
)
from fer_lightning.core.runs import find_checkpoint
from fer_lightning.models.trained import LoadedCheckpoint


def test_checkpoint_writes_are_atomic_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"weights": torch.zeros(1000)}  # about 5 kB
    big = {"weights": torch.zeros(200_000)}  # about 800 kB
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode
        == 0
    )
    try:
        if not mounted:  # no permission to mount: the disk fills after 64 kB of any file, as a tmpfs would
            import fer_lightning.core.checkpoints as module

            real_save = torch.save

            def full_disk_save(obj: object, file) -> None:
                real_save(obj, file)
                if file.tell() > 64_000:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(module.torch, "save", full_disk_save)
        io = AtomicCheckpointIO()
        last = disk / "checkpoints" / "last.ckpt"
        io.save_checkpoint(small, last)
        with pytest.raises(CheckpointWriteError, match=f"last.ckpt in {last.parent}"):
            io.save_checkpoint(big, last)
        torch.testing.assert_close(torch.load(last, weights_only=True)["weights"], small["weights"])  # still whole
        assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no partial file left
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


def test_a_truncated_checkpoint_is_named(trained_checkpoint: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(trained_checkpoint.read_bytes()[:5000])
    with pytest.raises(ValueError, match=f"ckpt_path={cut} is not a readable checkpoint"):
        LoadedCheckpoint.load(cut)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"eeee some text\n", "it is text"),  # torch itself: KeyError: 101
        (b"print('hello')\n", "it is text"),
        (pickle.dumps({"a": 1}, protocol=2), "Invalid magic number"),  # a plain pickle, not torch.save's
        (None, "objects a weights-only load refuses"),  # torch's UnpicklingError: its weights_only=False advice
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_one_line_without_torchs_advice(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    bad = tmp_path / "notes.txt"
    if content is None:
        torch.save({"state_dict": {}, "hook": print}, bad)
    else:
        bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"ckpt_path={bad} is not a readable checkpoint") as error:
        read_checkpoint(bad)
    message = str(error.value)
    assert said in message and "\n" not in message and "weights_only" not in message


def test_a_directory_as_ckpt_path_is_said_to_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=f"ckpt_path={tmp_path} is a directory, not a checkpoint file"):
        find_checkpoint(str(tmp_path))
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_checkpoint(tmp_path)


def test_a_text_file_as_ckpt_path_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("print('hello')\n")
    out = subprocess.run(
        [sys.executable, "-m", "fer_lightning.eval", f"ckpt_path={bad}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text and "weights_only" not in text, text
    assert [line for line in text.splitlines() if "[ERROR]" in line] == [
        next(line for line in text.splitlines() if f"ckpt_path={bad} is not a readable checkpoint" in line)
    ]


def test_int8_weights_are_off_by_at_most_half_a_step_of_their_channel() -> None:
    weight = torch.randn(6, 3, 3, 3)
    weight[2] = 0  # a channel of zeros stays zeros
    quantized, scale = quantize_int8(weight)
    assert quantized.dtype == torch.int8 and scale.shape == (6,)
    restored = dequantize({"w": quantized}, {"w": scale}, Path("model.pt"))["w"]
    step = weight.abs().amax(dim=(1, 2, 3)) / 127
    assert ((restored - weight).abs().amax(dim=(1, 2, 3)) <= step / 2 + 1e-7).all()
    assert (restored[2] == 0).all()


def test_an_int8_scale_that_does_not_fit_its_weight_is_named(trained_checkpoint: Path, tmp_path: Path) -> None:
    compact = compact_checkpoint(trained_checkpoint, "int8")
    key = next(iter(compact[INT8_SCALES_KEY]))
    compact[INT8_SCALES_KEY][key] = compact[INT8_SCALES_KEY][key][:-1]
    torch.save(compact, tmp_path / "model.pt")
    with pytest.raises(ValueError, match=rf"model.pt: state_dict\['{key}'\] has \d+ output channels.*one scale per"):
        read_checkpoint(tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"export.weights='int4': expected one of float16, int8"):
        compact_checkpoint(trained_checkpoint, "int4")


def test_int8_weights_without_their_scale_or_scales_without_int8_weights_are_named(
    trained_checkpoint: Path, tmp_path: Path
) -> None:
    compact = compact_checkpoint(trained_checkpoint, "int8")
    key, scale = next(iter(compact[INT8_SCALES_KEY].items()))
    float_key = next(k for k, v in compact["state_dict"].items() if v.dtype == torch.float16)
    broken = {
        "unscaled": (
            {k: v for k, v in compact[INT8_SCALES_KEY].items() if k != key},
            rf"\['{key}'\] is int8 without a scale",
        ),
        "not_int8": (
            {**compact[INT8_SCALES_KEY], float_key: scale},
            rf"int8 scale for state_dict\['{float_key}'\], which is not",
        ),
        "not_a_dict": ([scale], r"fer_lightning_int8_scales is a list, expected a dict of scales"),
    }
    for name, (scales, error) in broken.items():
        torch.save({**compact, INT8_SCALES_KEY: scales}, tmp_path / f"{name}.pt")
        with pytest.raises(ValueError, match=rf"{name}.pt: .*{error}"):
            read_checkpoint(tmp_path / f"{name}.pt")
