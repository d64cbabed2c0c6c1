from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.data.cache import load_fer
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.readers import FaceRecords, read_csv
from fer_lightning.data.splits import assign_splits
from tests.conftest import random_faces, write_csv, write_folders


def read_fer(root: Path) -> FaceRecords:
    """The records of a source that must read cleanly."""
    records, rejected = load_fer(root)
    assert rejected == []
    return records


def by_split(records: FaceRecords, val_fraction: float = 0.2) -> dict[str, list[tuple[str, int]]]:
    """Each split as a sorted list of (pixel hash, label): independent of read order."""
    index = assign_splits(records, val_fraction, seed=3)
    return {
        split: sorted((hashlib.sha1(records.images[i].tobytes()).hexdigest(), int(records.labels[i])) for i in rows)
        for split, rows in index.items()
    }


@pytest.mark.parametrize("usages", [("Training", "PublicTest", "PrivateTest"), ("Training", "PublicTest")])
def test_csv_and_folders_give_the_same_faces_labels_and_splits(tmp_path: Path, usages: tuple[str, ...]) -> None:
    images, labels = random_faces(120)
    usage = [usages[i % len(usages)] for i in range(120)]
    from_csv = read_fer(write_csv(tmp_path / "fer2013.csv", images, labels, usage))
    from_folders = read_fer(write_folders(tmp_path / "folders", images, labels, usage))
    assert len(from_csv) == len(from_folders) == 120
    assert by_split(from_csv) == by_split(from_folders)
    # The CSV keeps row order: its labels are the labels written.
    np.testing.assert_array_equal(from_csv.labels, labels)
    np.testing.assert_array_equal(from_csv.images, images)


def test_folder_names_map_to_csv_label_order_not_sort_order(tmp_path: Path) -> None:
    images, _ = random_faces(len(EMOTIONS))
    labels = np.arange(len(EMOTIONS))
    records = read_fer(write_folders(tmp_path, images, labels, ["Training"] * len(EMOTIONS)))
    for image, label in zip(records.images, records.labels, strict=True):
        expected = next(i for i in range(len(EMOTIONS)) if np.array_equal(images[i], image))
        assert label == expected
    assert EMOTIONS[6] == "neutral" and sorted(EMOTIONS)[4] == "neutral"  # the trap this guards against


def test_public_and_private_test_become_val_and_test(tmp_path: Path) -> None:
    images, labels = random_faces(30)
    usage = ["Training"] * 10 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    records = read_fer(write_csv(tmp_path / "fer2013.csv", images, labels, usage))
    index = assign_splits(records, val_fraction=0.5, seed=0)
    assert [list(index[s]) for s in ("train", "val", "test")] == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 30)),
    ]


def test_single_held_out_group_is_test_and_val_is_a_stratified_share_of_train(tmp_path: Path) -> None:
    images, _ = random_faces(240)
    labels = np.repeat(np.arange(len(EMOTIONS)), [40, 10, 40, 40, 40, 30, 40])
    usage = ["Training"] * 240
    usage[::8] = ["PublicTest"] * 30
    records = read_fer(write_csv(tmp_path / "fer2013.csv", images, labels, usage))
    index = assign_splits(records, val_fraction=0.25, seed=0)
    assert set(index["test"]) == {i for i, u in enumerate(usage) if u == "PublicTest"}
    train_labels = labels[[u == "Training" for u in usage]]
    for label in range(len(EMOTIONS)):
        n = (train_labels == label).sum()
        assert (records.labels[index["val"]] == label).sum() == round(0.25 * n)
    assert not set(index["val"]) & set(index["train"])
    assert len(index["train"]) + len(index["val"]) == 210
    # Seeded: the same seed gives the same val, another seed another one.
    assert np.array_equal(index["val"], assign_splits(records, 0.25, seed=0)["val"])
    assert not np.array_equal(index["val"], assign_splits(records, 0.25, seed=1)["val"])


def test_kaggle_icml_header_with_leading_spaces_and_no_usage_column(tmp_path: Path) -> None:
    images, labels = random_faces(3)
    rows = [f"{y}, Training,{' '.join(map(str, im.ravel()))}" for im, y in zip(images, labels, strict=True)]
    (tmp_path / "icml_face_data.csv").write_text("emotion, Usage, pixels\n" + "\n".join(rows) + "\n")
    records = read_fer(tmp_path / "icml_face_data.csv")
    np.testing.assert_array_equal(records.images, images)
    assert list(records.origins) == ["Training"] * 3
    (tmp_path / "train.csv").write_text("emotion,pixels\n" + "\n".join(r.replace(", Training", "") for r in rows))
    assert list(read_fer(tmp_path / "train.csv").origins) == ["Training"] * 3


@pytest.mark.parametrize(
    ("row", "detail"),
    [
        ("3,1 2 3,Training", "'pixels' holds 3 values, expected 2304 integers in 0..255"),
        ("3,{pixels} 1.5,Training", "'pixels' holds a value that is not an integer"),
        ("3,{pixels} 256,Training", "'pixels' holds 2305 values"),
        ("9,{pixels},Training", "emotion '9' is not one of 0..6"),
        ("3,{pixels},Validation", "Usage 'Validation' is not one of"),
        ("3,{pixels},Training,extra", "4 fields, expected 3"),
    ],
)
def test_a_bad_csv_row_is_rejected_with_its_line_and_the_rest_is_read(tmp_path: Path, row: str, detail: str) -> None:
    images, labels = random_faces(2)
    path = write_csv(tmp_path / "fer2013.csv", images[:1], labels[:1], ["Training"])
    with path.open("a") as f:
        f.write(row.format(pixels=" ".join(["7"] * 2304)) + "\n")
        f.write(f"{labels[1]},{' '.join(map(str, images[1].ravel()))},Training\n")
    records, rejected = load_fer(tmp_path)
    assert len(rejected) == 1 and rejected[0].source == f"{path}:3" and rejected[0].kind == "malformed"
    assert detail in rejected[0].detail
    np.testing.assert_array_equal(records.images, images)
    assert list(records.sources) == [f"{path}:2", f"{path}:4"]


def test_unreadable_and_non_image_files_are_rejected_by_name(tmp_path: Path) -> None:
    images, labels = random_faces(3)
    write_folders(tmp_path, images, labels, ["Training"] * 3)
    happy = tmp_path / "train" / "happy"
    happy.mkdir(exist_ok=True)
    (happy / "broken.jpg").write_bytes(b"not a jpeg")
    (happy / "notes.txt").write_text("hello")
    records, rejected = load_fer(tmp_path)
    assert len(records) == 3
    assert {(Path(r.source).name, r.kind) for r in rejected} == {
        ("broken.jpg", "unreadable"),
        ("notes.txt", "unreadable"),
    }
    assert any("not a readable image" in r.detail for r in rejected)


def test_bad_roots_and_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_fer(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="neither fer2013.csv nor train/ or test/ folders"):
        read_fer(tmp_path)
    (tmp_path / "train" / "contempt").mkdir(parents=True)
    with pytest.raises(ValueError, match="contempt: unknown class folder"):
        read_fer(tmp_path)
    (tmp_path / "train" / "contempt").rmdir()
    (tmp_path / "train" / "happy").mkdir()
    with pytest.raises(ValueError, match="happy: holds no images"):
        read_fer(tmp_path)
    (tmp_path / "fer2013.csv").write_text("label,pixels\n")
    with pytest.raises(ValueError, match=r"fer2013.csv: missing column\(s\) \['emotion'\]"):
        read_fer(tmp_path)


SYNONYMS = {
    "angry": "anger",
    "disgust": "Disgusted",
    "fear": "fearful",
    "happy": "Happiness",
    "sad": "sadness",
    "surprise": "surprised",
}


def test_folder_synonyms_of_other_datasets_read_as_the_seven_classes(tmp_path: Path) -> None:
    images, labels = random_faces(70)
    usage = ["Training"] * 50 + ["PublicTest"] * 20
    from_csv = read_fer(write_csv(tmp_path / "fer2013.csv", images, labels, usage))
    root = write_folders(tmp_path / "folders", images, labels, usage)
    for split in ("train", "test"):
        for name, synonym in SYNONYMS.items():
            if (root / split / name).is_dir():
                (root / split / name).rename(root / split / synonym)
    assert by_split(read_fer(root)) == by_split(from_csv)


def unknown_class_set(root: Path) -> Path:
    """Folders of the seven classes plus a contempt folder of three faces in train/."""
    images, labels = random_faces(40)
    write_folders(root, images, labels, ["Training"] * 30 + ["PublicTest"] * 10)
    contempt = root / "train" / "contempt"
    contempt.mkdir()
    for i, image in enumerate(random_faces(3, seed=1)[0]):
        Image.fromarray(image).save(contempt / f"Training_c{i}.png")
    return root


def test_an_unknown_class_folder_stops_the_read_unless_skipped_and_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = unknown_class_set(tmp_path)
    with pytest.raises(ValueError, match="contempt: unknown class folder.*data.unknown_classes=skip"):
        read_fer(root)
    with caplog.at_level(logging.WARNING):
        records, rejected = load_fer(root, unknown_classes="skip")
    assert rejected == [] and len(records) == 40 and not any("contempt" in s for s in records.sources)
    lines = [r.getMessage() for r in caplog.records if "contempt" in r.getMessage()]
    assert lines == [f"Skipping unknown class folder {root / 'train' / 'contempt'} (3 files)"]
    with pytest.raises(ValueError, match="data.unknown_classes='ignore': expected error or skip"):
        FERDataModule(str(root), unknown_classes="ignore")  # before anything is read


def test_the_datamodule_applies_unknown_classes_whatever_the_cache_holds(tmp_path: Path) -> None:
    root = unknown_class_set(tmp_path / "data")
    cache = tmp_path / "cache"
    skipping = FERDataModule(str(root), unknown_classes="skip", cache_dir=str(cache), num_workers=0)
    skipping.setup("test")
    assert sum(len(part) for part in skipping.splits.values()) == 40 and any(cache.iterdir())
    with pytest.raises(ValueError, match="contempt: unknown class folder"):  # the cache never hides the folder
        FERDataModule(str(root), cache_dir=str(cache), num_workers=0).setup("test")


def test_bad_csv_values_are_named_by_row(tmp_path: Path) -> None:
    images, labels = random_faces(3, seed=1)
    path = write_csv(tmp_path / "fer2013.csv", images, labels, ["Training"] * 3)
    lines = path.read_text().splitlines()
    pixels = lines[1].split(",")[1].split()
    lines[1] = f"{labels[0]},{' '.join(['300'] + pixels[1:])},Training"
    lines[2] = f"{labels[1]},{' '.join(['99999999999999999999999'] + pixels[1:])},Training"
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # with a byte-order mark, as Excel saves
    records, rejected = read_csv(path)
    assert len(records) == 1
    assert [r.source for r in rejected] == [f"{path}:2", f"{path}:3"]
    assert "outside 0..255 (first: 300)" in rejected[0].detail
    assert "too large" in rejected[1].detail


def test_a_16_bit_gray_png_is_scaled_to_8_bits_not_clipped(tmp_path: Path) -> None:
    images, labels = random_faces(14, seed=3)
    root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 14)
    sixteen = next((root / "train").rglob("*.png"))
    face = np.asarray(Image.open(sixteen))
    assert cv2.imwrite(str(sixteen), face.astype(np.uint16) * 257)  # the same face, 16 bits per pixel
    assert Image.open(sixteen).mode.startswith("I")
    records, rejected = load_fer(root)
    assert not rejected
    assert np.array_equal(records.images[list(records.sources).index(str(sixteen))], face)


def test_symlink_loops_in_a_data_folder_end_and_a_looping_file_is_listed(tmp_path: Path) -> None:
    images, labels = random_faces(14, seed=5)
    root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 14)
    class_dir = next(p for p in (root / "train").iterdir() if p.is_dir())
    (class_dir / "again").symlink_to(root / "train", target_is_directory=True)  # a folder loop
    (class_dir / "loop.png").symlink_to(class_dir / "loop.png")  # a file loop: ELOOP
    done: list[tuple] = []
    worker = threading.Thread(target=lambda: done.append(load_fer(root, cache_dir=tmp_path / "cache")), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done, "the cache key hung on the folder loop"
    records, rejected = done[0]
    assert len(records) == 14
    assert [(r.source, r.kind) for r in rejected] == [(str(class_dir / "loop.png"), "unreadable")]
    assert "symbolic links" in rejected[0].detail


def test_a_float_tiff_is_named_as_an_unsupported_depth_not_dropped_as_blank(tmp_path: Path) -> None:
    images, labels = random_faces(14, seed=10)
    root = write_folders(tmp_path / "fer", images, labels, ["Training"] * 14)
    png = next((root / "train").rglob("*.png"))
    tiff = png.with_suffix(".tif")
    Image.fromarray(np.asarray(Image.open(png)).astype(np.float32) / 255).save(tiff)  # gray values in 0..1
    png.unlink()
    assert Image.open(tiff).mode == "F"
    records, rejected = load_fer(root)
    assert len(records) == 13 and [r.source for r in rejected] == [str(tiff)]
    assert "float pixels (PIL mode F): unsupported pixel depth" in rejected[0].detail
