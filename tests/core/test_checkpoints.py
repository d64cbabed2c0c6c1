"""Checkpoint files: written whole or not at all, a bad or truncated one named in one line."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
import torch

from fer_lightning.core.checkpoints import AtomicCheckpointIO, CheckpointWriteError
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
