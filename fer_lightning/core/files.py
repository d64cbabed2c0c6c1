"""Every file a command leaves behind appears whole or not at all: written beside its final name, synced to disk,
then renamed over it. Reports, figures, the decoded-face cache, checkpoints, exported models and annotated videos all
go through here, so a full disk or a killed process leaves the previous file whole and at most a hidden
``.<name>.<pid>.partial<suffix>`` beside it (fsspec's "atomic" save writes in /tmp and copies across filesystems)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def partial_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: hidden, beside it (one filesystem, so the rename is
    atomic), with its suffix (writers such as OpenCV's pick the format by it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


def commit(partial: Path, path: Path) -> None:
    """A written ``partial`` synced to disk, then renamed over ``path`` at once."""
    descriptor = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(partial, path)


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(partial)`` fills the partial file; ``commit`` then makes it ``path``. On any error the partial file
    goes and ``path`` stays as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        write(partial)
        commit(partial, path)
    except BaseException:
        # The write's own error is the one to report: on a read-only folder removing the partial file fails
        # too (EROFS), and that error would hide it.
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


def write_text(text: str, path: Path) -> None:
    write_atomically(path, lambda partial: partial.write_text(text))


def write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> None:
    write_atomically(path, lambda partial: table.to_csv(partial, index=index))


def write_json(content: dict, path: Path) -> None:
    write_text(json.dumps(content, indent=2, sort_keys=True), path)
