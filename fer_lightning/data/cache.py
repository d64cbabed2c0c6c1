"""Decoded-array cache: the first load decodes every face, later runs and sweep jobs start from one file.

The key is the source's identity (the path, size and mtime of every file the reader reads, exactly those; the CSV's
own) plus a format version: any change to the data rebuilds the cache; data that changes while it is read is not
cached. Cleaning is not part of the key: it re-runs from the cached arrays in a fraction of a second, so changing a
cleaning rule never needs a re-decode.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from fer_lightning.core.classes import FACE_SIZE, NUM_CLASSES
from fer_lightning.core.files import write_atomically
from fer_lightning.data.readers import (
    FaceRecords,
    Rejected,
    UnknownClasses,
    check_class_folders,
    class_folder_entries,
    find_source,
    read_csv,
    read_folders,
)

log = logging.getLogger(__name__)
CACHE_VERSION = "1"  # bump when the readers change what they return


def source_files(kind: str, path: Path) -> list[str]:
    """The files the reader reads: the CSV, or every entry of the class folders (``class_folder_entries``: a link to a
    folder inside a class folder is skipped by the reader, so never walked here either)."""
    if kind == "csv":
        return [str(path)]
    return [str(file) for _, entries in class_folder_entries(path) for file in entries]


def source_identity(kind: str, path: Path) -> str:
    """A string that changes whenever any file the reader reads is added, removed or modified."""
    entries, prefix = [], 0 if path.parent == Path() else len(os.path.join(path.parent, ""))
    for file in source_files(kind, path):  # named <source folder>/train/<class>/<file>, whatever the working directory
        try:
            stat = os.stat(file)  # os.stat on strings: 4x faster than Path.stat on 32k files
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
    if source_identity(kind, path) != key:  # a cache keyed to either state of the files would never be hit again
        log.warning("%s changed while it was being read: not caching it (the next run decodes it again)", path)
        return records, rejected
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
    problem = malformed(records)
    if problem:
        log.warning("Cache %s %s; rebuilding it", file, problem)
        return None
    return records, rejected


def malformed(records: FaceRecords) -> str | None:
    """What is wrong with cached arrays the reader could not have made (a damaged or hand-edited file), else None:
    they would fail later, far from the cache (a label of 99 as an IndexError in training)."""
    images, labels = records.images, records.labels
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (FACE_SIZE, FACE_SIZE):
        return f"holds images of {images.dtype} {list(images.shape)}, expected uint8 [N, {FACE_SIZE}, {FACE_SIZE}]"
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        return f"holds labels of {labels.dtype} {list(labels.shape)}, expected integers [N]"
    if {len(labels), len(records.origins), len(records.sources)} != {len(images)}:
        return "holds arrays of different lengths (images, labels, origins, sources)"
    outside = labels[(labels < 0) | (labels >= NUM_CLASSES)]
    if outside.size:
        return f"holds {outside.size} label(s) outside 0..{NUM_CLASSES - 1} (first: {outside[0]})"
    return None


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
