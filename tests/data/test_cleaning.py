"""Each kind of bad record, planted in both formats, is found, acted on as configured, and reported."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_lightning.data.cache import load_fer
from fer_lightning.data.cleaning import CleaningRules, clean_splits
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.splits import assign_splits
from tests.conftest import random_faces, write_csv, write_folders


def planted() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """40 random faces plus known defects; rows 0-29 Training, 30-34 PublicTest, 35-39 PrivateTest."""
    images, labels = random_faces(40, seed=5)
    usage = ["Training"] * 30 + ["PublicTest"] * 5 + ["PrivateTest"] * 5
    images[0] = 0  # blank in train
    images[36] = 128  # near-constant in test
    images[36, 0, 0] = 129
    images[2], labels[2] = images[1], labels[1]  # duplicate within train
    images[3] = images[31]  # train copy of a val face
    labels[3] = labels[31]
    images[4], labels[4] = images[37], labels[37]  # train copy of a test face
    images[6], labels[6] = images[5], (labels[5] + 1) % 7  # conflicting labels within train
    return images, labels, usage


EXPECTED = {  # (row, kind) -> action
    (0, "blank"): "drop",
    (36, "blank"): "report",  # test faces are listed, not dropped
    (2, "duplicate"): "drop",
    (3, "leak"): "drop",
    (4, "leak"): "drop",
    (5, "conflicting"): "drop",
    (6, "conflicting"): "drop",
}


def row_of(source: str) -> int:
    """The planted row a source names: ``fer2013.csv:<line>`` (line = row + 2) or ``<Usage>_<row>.png``."""
    if ".csv:" in source:
        return int(source.rsplit(":", 1)[1]) - 2
    return int(re.search(r"_(\d+)\.\w+$", source).group(1))


@pytest.mark.parametrize("layout", ["csv", "folders"])
def test_every_planted_defect_is_found_dropped_and_reported(tmp_path: Path, layout: str) -> None:
    images, labels, usage = planted()
    if layout == "csv":
        root = write_csv(tmp_path / "fer2013.csv", images, labels, usage)
        with root.open("a") as f:
            f.write("3,1 2 3,Training\n")  # line 42 = row 40: malformed
        bad = (40, "malformed")
    else:
        root = write_folders(tmp_path, images, labels, usage)
        (tmp_path / "train" / "sad").mkdir(exist_ok=True)
        (tmp_path / "train" / "sad" / "Training_40.jpg").write_bytes(b"\xff\xd8 truncated")
        bad = (40, "unreadable")
    records, rejected = load_fer(root)
    index = assign_splits(records, val_fraction=0.2, seed=0)
    kept, report = clean_splits(records, index, rejected, CleaningRules())

    found = {
        (row_of(source), kind): action
        for source, kind, action in zip(report["source"], report["kind"], report["action"], strict=True)
    }
    assert found == {**EXPECTED, bad: "drop"}
    kept_sources = {s for rows in kept.values() for s in records.sources[rows]}
    dropped = set(report.loc[report["action"] == "drop", "source"])
    assert not kept_sources & dropped
    assert len(kept_sources) == len(records) - 6  # 6 records dropped; the unreadable one never was a record
    assert records.sources[index["test"]].tolist() == records.sources[kept["test"]].tolist()


def test_actions_keep_report_and_alter_test_are_honoured(tmp_path: Path) -> None:
    images, labels, usage = planted()
    records, rejected = load_fer(write_csv(tmp_path / "fer2013.csv", images, labels, usage))
    index = assign_splits(records, val_fraction=0.2, seed=0)
    rules = CleaningRules(blank="keep", duplicate="report", leak="drop", conflicting="drop", alter_test=True)
    kept, report = clean_splits(records, index, rejected, rules)
    assert "blank" not in set(report["kind"])
    assert set(report.loc[report["kind"] == "duplicate", "action"]) == {"report"}
    assert sum(len(rows) for rows in kept.values()) == 40 - 4  # two leaks, two conflicting
    with pytest.raises(ValueError, match="data.cleaning.blank='remove'"):
        CleaningRules(blank="remove")
    kept, report = clean_splits(records, index, rejected, CleaningRules(alter_test=True))
    assert len(kept["test"]) == len(index["test"]) - 1  # the near-constant test face is gone too


def test_datamodule_writes_the_report_and_refuses_unreadable_records_without_cleaning(tmp_path: Path) -> None:
    images, labels, usage = planted()
    root = write_folders(tmp_path / "data", images, labels, usage)
    (root / "train" / "happy" / "Training_998.jpg").write_bytes(b"garbage")
    strict = FERDataModule(str(root), clean=False)
    with pytest.raises(ValueError, match=r"Training_998\.jpg: not a readable image.*data\.clean=true"):
        strict.setup("fit")
    datamodule = FERDataModule(str(root), report_dir=str(tmp_path / "run"), val_fraction=0.2)
    datamodule.setup("fit")
    report = pd.read_csv(tmp_path / "run" / "cleaning_report.csv")
    assert report["source"].str.endswith("Training_998.jpg").sum() == 1
    assert len(report) == 8
    assert sum(len(s) for s in datamodule.splits.values()) == 40 - 6


def test_a_source_with_many_unreadable_records_stops_the_run_naming_the_share_and_the_key(tmp_path: Path) -> None:
    images, labels = random_faces(20, seed=9)
    path = write_csv(tmp_path / "fer2013.csv", images, labels, ["Training"] * 16 + ["PublicTest"] * 4)
    lines = path.read_text().splitlines()
    for row in range(1, 21, 2):  # every other row's label is out of range: half the file
        lines[row] = "9" + lines[row][1:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"10 of 20 records of data.root=.* \(50\.0%\) cannot be read") as error:
        FERDataModule(str(path), num_workers=0).setup("fit")
    assert "data.max_dropped_fraction=0.05" in str(error.value) and "\n" not in str(error.value)
    allowed = FERDataModule(str(path), num_workers=0, max_dropped_fraction=0.5, val_fraction=0.2)
    allowed.setup("fit")  # said on purpose: the readable half
    assert sum(len(s) for s in allowed.splits.values()) == 10
    with pytest.raises(ValueError, match=r"data.max_dropped_fraction=1.5: expected a value in \[0, 1\]"):
        FERDataModule(str(path), max_dropped_fraction=1.5)
