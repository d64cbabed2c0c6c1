"""Files appear whole or not at all: written beside the final name, synced, renamed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from fer_lightning.core.checkpoints import AtomicCheckpointIO, CheckpointWriteError
from fer_lightning.core.files import partial_path, write_atomically, write_json, write_text


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.md"
    write_text("old", path)
    seen = []

    def failing(partial: Path) -> None:
        seen.append(partial)
        partial.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, failing)
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["report.md"]
    assert seen == [partial_path(path)] and seen[0].parent == path.parent and seen[0].suffix == ".md"
    write_json({"b": 1, "a": 2}, path.with_suffix(".json"))
    assert path.with_suffix(".json").read_text() == '{\n  "a": 2,\n  "b": 1\n}'


def test_the_writes_own_error_is_reported_when_removing_the_partial_file_fails_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(code: int):
        def raise_error(*args, **kwargs):
            raise OSError(code, os.strerror(code))

        return raise_error

    monkeypatch.setattr(Path, "open", fails(errno.ENOSPC))  # torch.save's file
    monkeypatch.setattr(Path, "unlink", fails(errno.EROFS))  # e.g. a folder that turned read-only
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointWriteError, match=f"could not write checkpoint last.ckpt in {last.parent}") as error:
        AtomicCheckpointIO().save_checkpoint({"weights": torch.zeros(3)}, last)
    assert "No space left on device" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(OSError) as error:
        write_text("x", tmp_path / "report.md")
    assert error.value.errno == errno.ENOSPC
