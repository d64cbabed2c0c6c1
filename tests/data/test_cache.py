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


def test_a_folder_link_in_a_class_folder_is_not_walked_and_the_cache_hits_again(
    tmp_path: Path, decodes: list[Path]
) -> None:
    images, labels = random_faces(14, seed=4)
    root = write_folders(tmp_path / "data", images, labels, ["Training"] * 14)
    elsewhere = tmp_path / "elsewhere"  # a stand-in for "/": many files, some of them changing all the time
    elsewhere.mkdir()
    for i in range(200):
        (elsewhere / f"{i}.png").write_bytes(b"x")
    class_dir = next(p for p in (root / "train").iterdir() if p.is_dir())
    (class_dir / "everything").symlink_to(elsewhere, target_is_directory=True)  # the reader skips folders
    (class_dir / "up").symlink_to(tmp_path, target_is_directory=True)

    key = cache.source_identity("folders", root)
    assert "elsewhere" not in key and "/up/" not in key and "everything" not in key
    assert len(key.splitlines()) == 2 + 14  # the header, then the files the reader reads: the 14 faces
    load_fer(root, tmp_path / "cache")
    churning = elsewhere / "0.png"
    os.utime(churning, ns=(churning.stat().st_atime_ns, churning.stat().st_mtime_ns + 10**9))
    records, _ = load_fer(root, tmp_path / "cache")  # a hit: nothing outside the reader's files is in the key
    assert len(decodes) == 1 and len(records) == 14


def test_data_that_changes_while_it_is_read_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    images, labels = random_faces(14, seed=6)
    root = write_folders(tmp_path / "data", images, labels, ["Training"] * 14)
    real = cache.read_folders

    def changing(path: Path):  # a file written to while the faces are decoded
        done = real(path)
        changed = next(root.rglob("*.png"))
        os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
        return done

    monkeypatch.setattr(cache, "read_folders", changing)
    with caplog.at_level(logging.WARNING):
        records, _ = load_fer(root, tmp_path / "cache")
    assert len(records) == 14
    assert not list((tmp_path / "cache").glob("*.npz"))  # keyed to either state, it could never be hit
    assert any("changed while it was being read: not caching it" in r.getMessage() for r in caplog.records)


def test_a_cache_holding_labels_no_reader_makes_is_rebuilt(
    tmp_path: Path, decodes: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    images, labels = random_faces(14, seed=7)
    root = write_folders(tmp_path / "data", images, labels, ["Training"] * 14)
    first, _ = load_fer(root, tmp_path / "cache")
    [file] = (tmp_path / "cache").glob("*.npz")
    with np.load(file) as saved:
        arrays = dict(saved)
    arrays["labels"] = np.full_like(arrays["labels"], 99)  # the key still matches: only the arrays are wrong
    with file.open("wb") as out:
        np.savez(out, **arrays)
    with caplog.at_level(logging.WARNING):
        records, _ = load_fer(root, tmp_path / "cache")
    assert len(decodes) == 2 and np.array_equal(records.labels, first.labels)  # decoded again, not an IndexError later
    assert any(f"Cache {file} holds 14 label(s) outside 0..6 (first: 99)" in r.getMessage() for r in caplog.records)
