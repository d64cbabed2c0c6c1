"""Cleaning FER-2013 on purpose: blank faces, exact duplicates, train/test leakage, conflicting labels.

Every record a rule touches gets a row in the report (unless its action is ``keep``), so nothing is
lost silently. Rules run after the split assignment, so the splits themselves never depend on them.
The test split is reported but left as published unless ``alter_test`` is set: test numbers then stay
comparable with other work, and its copies in train and val are removed instead (``leak``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.data.readers import FaceRecords, Rejected
from fer_lightning.data.splits import SPLITS

Action = Literal["drop", "keep", "report"]  # report: keep the record and list it
REPORT_COLUMNS = ["source", "split", "label", "kind", "action", "group", "detail"]


@dataclass(frozen=True)
class CleaningRules:
    """What to do with each kind of defect; every field is a key under ``data.cleaning``."""

    blank_std: float = 2.0  # a face whose pixel standard deviation is below this is blank or near-constant
    blank: Action = "drop"
    duplicate: Action = "drop"  # exact copies within one split: the first stays, the others get this
    leak: Action = "drop"  # train (or val) copies of a face that is also in a later split (val or test)
    conflicting: Action = "drop"  # identical faces with different labels: every copy
    alter_test: bool = False  # apply the actions to the test split too (else flagged test faces are kept)

    def __post_init__(self) -> None:
        for kind in ("blank", "duplicate", "leak", "conflicting"):
            if getattr(self, kind) not in ("drop", "keep", "report"):
                raise ValueError(f"data.cleaning.{kind}={getattr(self, kind)!r}: expected drop, keep or report")


def pixel_std(images: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Per-image standard deviation, in chunks so 35k faces never need a float64 copy of them all."""
    return (
        np.concatenate(
            [
                images[i : i + chunk].reshape(len(images[i : i + chunk]), -1).astype(np.float32).std(1)
                for i in range(0, len(images), chunk)
            ]
        )
        if len(images)
        else np.empty(0, np.float32)
    )


def pixel_hashes(images: np.ndarray) -> np.ndarray:
    """A 16-byte digest of each face's pixels: equal digests are exact duplicates."""
    return np.array([hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images], dtype="S16")


def copies_in(images: np.ndarray, hashes: frozenset[bytes]) -> np.ndarray:
    """Per face, whether an exact pixel copy of it is among ``hashes`` (``pixel_hashes`` of other faces)."""
    return np.array([digest in hashes for digest in pixel_hashes(images)], dtype=bool)


def find_defects(records: FaceRecords, split_of: np.ndarray, blank_std: float) -> pd.DataFrame:
    """One row per flagged record: its index, kind and duplicate group; each record gets one kind only,
    in priority blank > conflicting > leak > duplicate."""
    blank = pixel_std(records.images) < blank_std
    rows = [(i, "blank", "", f"pixel std below {blank_std}") for i in np.flatnonzero(blank)]
    candidates = np.flatnonzero(~blank)
    hashes = pixel_hashes(records.images[candidates])
    _, group_of, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    order = {split: rank for rank, split in enumerate(SPLITS)}
    by_group = np.argsort(group_of, kind="stable")  # each group's members together, in read order
    starts = np.cumsum(counts) - counts
    for group in np.flatnonzero(counts > 1):
        positions = by_group[starts[group] : starts[group] + counts[group]]
        members = candidates[positions]  # in read order, so "the first" is stable
        name = hashes[positions[0]].hex()[:12]
        labels = sorted({EMOTIONS[y] for y in records.labels[members]})
        if len(labels) > 1:
            rows += [(i, "conflicting", name, f"same pixels labelled {', '.join(labels)}") for i in members]
            continue
        last = max(order[s] for s in split_of[members])
        in_last = [i for i in members if order[split_of[i]] == last]
        rows += [(i, "leak", name, f"also in {SPLITS[last]}") for i in members if order[split_of[i]] < last]
        rows += [(i, "duplicate", name, f"copy of {records.sources[in_last[0]]}") for i in in_last[1:]]
    return pd.DataFrame(rows, columns=["index", "kind", "group", "detail"]).astype({"index": np.int64})


def clean_splits(
    records: FaceRecords, index: dict[str, np.ndarray], rejected: list[Rejected], rules: CleaningRules
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The split indices without the dropped records, and the report of every record touched."""
    split_of = np.empty(len(records), dtype=object)
    for split, rows in index.items():
        split_of[rows] = split
    defects = find_defects(records, split_of, rules.blank_std)
    flagged = defects["index"].to_numpy()
    actions = np.array([getattr(rules, kind) for kind in defects["kind"]], dtype=object)
    spared = (split_of[flagged] == "test") & (not rules.alter_test)
    defects["action"] = np.where(spared & (actions == "drop"), "report", actions)
    report = pd.DataFrame(
        {
            "source": records.sources[flagged],
            "split": split_of[flagged],
            "label": [EMOTIONS[y] for y in records.labels[flagged]],
            "kind": defects["kind"],
            "action": defects["action"],
            "group": defects["group"],
            "detail": defects["detail"],
        }
    )
    unread = pd.DataFrame([(r.source, "", "", r.kind, "drop", "", r.detail) for r in rejected], columns=REPORT_COLUMNS)
    report = pd.concat([unread, report[report["action"] != "keep"]], ignore_index=True)[REPORT_COLUMNS]
    dropped = set(defects.loc[defects["action"] == "drop", "index"])
    kept = {split: np.array([i for i in rows if i not in dropped], dtype=np.int64) for split, rows in index.items()}
    return kept, report


def summarize(report: pd.DataFrame) -> pd.DataFrame:
    """Records per defect kind, split and action, and how many duplicate groups they form."""
    if report.empty:
        return pd.DataFrame(columns=["kind", "split", "action", "records", "groups"])
    return (
        report.assign(split=report["split"].replace("", "unread"))
        .groupby(["kind", "split", "action"])
        .agg(records=("source", "size"), groups=("group", lambda g: g[g != ""].nunique()))
        .reset_index()
    )


def check_dropped_share(read: int, rejected: list[Rejected], max_fraction: float, root: object) -> None:
    """Stop when more than ``max_fraction`` (``data.max_dropped_fraction``) of the records could not be read (unreadable
    files, malformed CSV rows): a source half of whose rows are broken is a wrong file or a wrong format, and training
    on the other half would look like a run on the data. ``read``: the records that were read."""
    total = read + len(rejected)
    share = len(rejected) / total if total else 0.0
    if share > max_fraction:
        first = rejected[0]
        raise ValueError(
            f"{len(rejected)} of {total} records of data.root={root} ({share:.1%}) cannot be read, first "
            f"{first.source}: {first.detail}; that is more than data.max_dropped_fraction={max_fraction} "
            f"(raise it to train on the {read} that can)"
        )
