"""Decoded-array cache: the first load decodes every face, later runs and sweep jobs start from one file.

The key is the source's identity (every file's path, size and mtime; the CSV's own) plus a format
version: any change to the data rebuilds the cache. Cleaning is not part of the key: it re-runs from
the cached arrays in a fraction of a second, so changing a cleaning rule never needs a re-decode.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_lightning.core.files import write_atomically
from fer_lightning.data.readers import (
    FaceRecords,
    Rejected,
    UnknownClasses,
    check_class_folders,
    find_source,
    read_csv,
    read_folders,
)

log = logging.getLogger(__name__)
CACHE_VERSION = "1"  # bump when the readers change what they return


def walk_files(top: Path) -> Iterator[str]:
    """Every file under ``top``, links followed, each real folder once: a symlink loop ends instead of hanging."""
    seen: set[str] = set()
    for folder, dirs, names in os.walk(top, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        yield from (os.path.join(folder, name) for name in names)


def source_identity(kind: str, path: Path) -> str:
    """A string that changes whenever any file of the source is added, removed or modified."""
    if kind == "csv":
        files = [str(path)]
    else:  # os.walk/os.stat on strings: 4x faster than rglob on 32k files; links followed, as the reader does
        files = sorted(file for split in ("train", "test") for file in walk_files(path / split))
    entries, prefix = [], 0 if path.parent == Path() else len(os.path.join(path.parent, ""))
    for file in files:  # named <source folder>/train/<class>/<file>, whatever the working directory
        try:
            stat = os.stat(file)
        except OSError as error:  # a dangling or looping symlink: the reader lists it as unreadable
            entries.append(f"{file[prefix:]}\t{error.strerror}")
            continue
        entries.append(f"{file[prefix:]}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return f"fer-lightning cache v{CACHE_VERSION}\n{kind}\t{path.resolve()}\n" + "\n".join(entries)


def load_fer(
    root: str | Path, cache_dir: str | Path | None = None, unknown_classes: UnknownClasses = "error"
) -> tuple[FaceRecords, list[Rejected]]:
    """FER-2013 from a CSV file, a folder holding one, or the image-folder layout, through the cache in ``cache_dir``
    (None: always decode). A class folder that is none of the seven stops the load, or with ``unknown_classes="skip"``
    is listed and left out; it is looked at before the cache, whose arrays never hold such folders."""
    kind, path = find_source(root)
    if kind == "folders":
        check_class_folders(path, unknown_classes)
    read = read_csv if kind == "csv" else read_folders
    if cache_dir is None:
        return read(path)
    key = source_identity(kind, path)
    # One file per source: a stale cache is replaced, not piled up beside the new one.
    file = Path(cache_dir) / f"fer-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:20]}.npz"
    start = time.perf_counter()
    cached = load_cache(file, key)
    if cached is not None:
        log.info(
            "Loaded %d faces of %s from the cache %s in %.2f s", len(cached[0]), path, file, time.perf_counter() - start
        )
        return cached
    records, rejected = read(path)
    log.info("Decoded %d faces of %s in %.1f s", len(records), path, time.perf_counter() - start)
    try:
        save_cache(file, key, records, rejected)
    except OSError as error:  # a full disk, a read-only or unwritable data.cache_dir: the data is decoded already
        log.warning("Could not write the data cache %s (%s): carrying on uncached", file, error.strerror or error)
    return records, rejected


def load_cache(file: Path, key: str) -> tuple[FaceRecords, list[Rejected]] | None:
    """The cached arrays, or None when absent, stale or unreadable (then it is rebuilt, never trusted)."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as saved:
            if str(saved["key"]) != key:
                log.warning("Cache %s belongs to other data; rebuilding it", file)
                return None
            records = FaceRecords(saved["images"], saved["labels"], saved["origins"], saved["sources"])
            rejected = [
                Rejected(*row)
                for row in zip(*(saved[f"rejected_{f}"].tolist() for f in ("source", "kind", "detail")), strict=True)
            ]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        log.warning("Cache %s is unreadable (%s); rebuilding it", file, error)
        return None
    return records, rejected


def save_cache(file: Path, key: str, records: FaceRecords, rejected: list[Rejected]) -> None:
    """Written to a temporary file, then renamed: a crash never leaves half a cache behind."""
    arrays = {
        "key": np.array(key),
        "images": records.images,
        "labels": records.labels,
        "origins": records.origins,
        "sources": records.sources,
        **{
            f"rejected_{f}": np.array([getattr(r, f) for r in rejected], dtype=str)
            for f in ("source", "kind", "detail")
        },
    }

    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            np.savez(out, **arrays)

    write_atomically(file, write)
