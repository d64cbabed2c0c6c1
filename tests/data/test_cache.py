"""The decoded-array cache: miss, hit, invalidation when a file changes, recovery from a broken file."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from fer_lightning.data import cache
from fer_lightning.data.cache import load_fer
from tests.conftest import random_faces, write_folders


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The roots the folder reader really decoded (a cache hit decodes nothing)."""
    calls: list[Path] = []
    real = cache.read_folders

    def counting(root: Path):
        calls.append(root)
        return real(root)

    monkeypatch.setattr(cache, "read_folders", counting)
    return calls


def test_cache_hit_miss_invalidation_and_recovery(tmp_path: Path, decodes: list[Path]) -> None:
    images, labels = random_faces(20)
    root = write_folders(tmp_path / "data", images, labels, ["Training"] * 15 + ["PublicTest"] * 5)
    (root / "train" / "happy").mkdir(exist_ok=True)
    (root / "train" / "happy" / "bad.jpg").write_bytes(b"junk")
    cache_dir = tmp_path / "cache"

    first, rejected = load_fer(root, cache_dir)
    assert len(decodes) == 1 and len(first) == 20 and len(rejected) == 1
    [file] = cache_dir.glob("*.npz")

    second, rejected_again = load_fer(root, cache_dir)  # hit: nothing decoded
    assert len(decodes) == 1
    for field in ("images", "labels", "origins", "sources"):
        np.testing.assert_array_equal(getattr(second, field), getattr(first, field))
    assert rejected_again == rejected

    changed = next((root / "train").rglob("*.png"))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a modified file: miss
    load_fer(root, cache_dir)
    assert len(decodes) == 2

    assert list(cache_dir.glob("*.npz")) == [file]  # replaced, not piled up
    file.write_bytes(file.read_bytes()[:1000])  # truncated: rebuilt, never trusted
    rebuilt, _ = load_fer(root, cache_dir)
    assert len(decodes) == 3
    np.testing.assert_array_equal(rebuilt.images, first.images)
    load_fer(root, cache_dir)
    assert len(decodes) == 3
    assert not list(cache_dir.glob("*.tmp"))


def test_cache_key_follows_added_and_removed_files_not_the_working_directory(
    tmp_path: Path, decodes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = random_faces(10)
    root = write_folders(tmp_path / "data", images, labels, ["Training"] * 8 + ["PublicTest"] * 2)
    cache_dir = tmp_path / "cache"
    load_fer(root, cache_dir)
    monkeypatch.chdir(root.parent)
    load_fer(root.name, cache_dir)  # the same source by a relative path: a hit
    assert len(decodes) == 1

    removed = next(p for p in root.rglob("*.png") if len(list(p.parent.iterdir())) > 1)  # no class folder left empty
    moved = removed.rename(tmp_path / removed.name)
    assert len(load_fer(root, cache_dir)[0]) == 9 and len(decodes) == 2
    moved.rename(removed)  # back, with its old size and mtime: the first key again, so a miss once more
    assert len(load_fer(root, cache_dir)[0]) == 10 and len(decodes) == 3

    # A class folder linked in (the reader follows links): the same files, a hit; a change inside it, a miss.
    class_dir = next(p for p in (root / "train").iterdir() if p.is_dir())
    elsewhere = class_dir.rename(tmp_path / "elsewhere")
    class_dir.symlink_to(elsewhere, target_is_directory=True)
    load_fer(root, cache_dir)
    assert len(decodes) == 3
    changed = next(elsewhere.glob("*.png"))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    load_fer(root, cache_dir)
    assert len(decodes) == 4


def test_a_full_disk_under_the_cache_dir_carries_on_uncached_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    images, labels = random_faces(14, seed=8)
    root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 14)

    def full_disk(path: Path, write) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(cache, "write_atomically", full_disk)
    with caplog.at_level(logging.WARNING):
        records, rejected = load_fer(root, cache_dir=tmp_path / "cache")
    assert len(records) == 14 and not rejected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left on device): carrying on uncached" in warnings[0]
