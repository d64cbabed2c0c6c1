"""The one LightningDataModule for FER: real data from disk or the built-in synthetic faces."""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple

import albumentations as A
import numpy as np
import pandas as pd
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader, Dataset, get_worker_info

from fer_lightning.core.classes import FACE_SIZE, NUM_CLASSES
from fer_lightning.core.files import write_csv
from fer_lightning.core.validation import check_choice, check_value
from fer_lightning.data.batched import BatchedPipeline
from fer_lightning.data.cache import load_fer
from fer_lightning.data.cleaning import (
    REPORT_COLUMNS,
    CleaningRules,
    check_dropped_share,
    clean_splits,
    copies_in,
    pixel_hashes,
    summarize,
)
from fer_lightning.data.readers import FaceRecords, Rejected, UnknownClasses, check_class_folders, find_source
from fer_lightning.data.splits import SPLITS, assign_splits, split_table, stratified_order
from fer_lightning.data.synthetic import make_synthetic_faces
from fer_lightning.data.transforms import build_transform

log = logging.getLogger(__name__)


class FaceDataset(Dataset):
    """uint8 faces held in memory, transformed per item."""

    def __init__(self, records: FaceRecords, transform: A.Compose) -> None:
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.transform(image=self.records.images[index])["image"]
        return image, int(self.records.labels[index])


def augmentation_seed(rank: int = 0) -> int:
    """A seed for albumentations' own generator, drawn from this process's torch generator (which
    seed_everything seeds, and Lightning's worker seeding sets per run, epoch, worker and rank)."""
    return int(np.random.SeedSequence([int(torch.randint(2**62, ())), rank]).generate_state(1)[0])


class WorkerRelease:
    """Whether this process is done with its DataLoader workers, shared with them (a flag in shared memory).

    Signals aimed at a run reach its workers too: Ctrl-C and ``kill -- -<pgid>`` go to the process group, ``timeout``
    relays its SIGTERM to the group a second time, SLURM signals every process of the job. A worker that died of them
    first would end the run with "worker killed by signal" before the main process saved last.ckpt. So a worker
    ignores SIGINT and ignores SIGTERM until the main process releases it: when the trainer stops on an exception
    (``FERDataModule.on_exception``, after the callbacks saved last.ckpt) and when the process exits (before
    multiprocessing's own exit handler, which terminates and then waits for every live worker). From then on the
    DataLoader's and multiprocessing's terminate() end it, so no parent ever waits forever in waitpid.
    """

    _every: list[WorkerRelease] = []

    def __init__(self) -> None:
        self.flag = multiprocessing.RawValue("b", 0)  # inherited by forked workers, pickled to spawned ones
        if not WorkerRelease._every:
            # atexit runs last-registered first: this runs before the exit handler multiprocessing registered on import.
            atexit.register(WorkerRelease.release_all)
        WorkerRelease._every.append(self)

    def release(self) -> None:
        self.flag.value = 1

    @property
    def released(self) -> bool:
        return bool(self.flag.value)

    @staticmethod
    def release_all() -> None:
        for release in WorkerRelease._every:
            release.release()

    def on_sigterm(self, signum: int, frame: object) -> None:
        """In a worker: a SIGTERM ends it once the main process released it; before that it is the group's, and the
        main process, which got it too, saves and then shuts the workers down."""
        if self.released:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def init_worker(worker_id: int, release: WorkerRelease | None = None) -> None:
    """Every DataLoader worker: Ctrl-C and SIGTERM are left to the main process until it releases the workers
    (WorkerRelease); torch, numpy and random are seeded as Lightning seeds workers; and albumentations' generator,
    which no global seed reaches and which forked workers would otherwise share, gets its own seed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, release.on_sigterm if release is not None else signal.SIG_IGN)
    # SLURM's requeue signals (USR1 for Lightning, USR2 for submitit) reach every process of the job: a forked
    # worker would run the handler it inherited, save a checkpoint and requeue the job again.
    for name in ("SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):  # no SIGUSR* on Windows
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    pl_worker_init_function(worker_id)
    info = get_worker_info()
    info.dataset.transform.set_random_seed(augmentation_seed(rank_zero_only.rank))


OnDevice = Literal["auto", True, False]
# data.on_device=auto per device kind: what `python -m fer_lightning.bench sections=[paths]` measured faster there
# (docs/results.md: on a 2-core CPU too, the albumentations worker takes a core the training step needs).
ON_DEVICE_AUTO = {"cuda": True, "cpu": True}


class IndexBatch(NamedTuple):
    """What a DataLoader of the device path hands out: which faces of which split (the faces stay on the device)."""

    split: str
    index: torch.Tensor


class FaceIndices(Dataset):
    """The positions of a split's faces: the sampler (shuffling, DDP's shards, a resume) works on these alone."""

    def __init__(self, split: str, size: int) -> None:
        self.split, self.size = split, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.split, index

    @staticmethod
    def collate(items: list[tuple[str, int]]) -> IndexBatch:
        return IndexBatch(items[0][0], torch.tensor([index for _, index in items]))


class ResidentFaces:
    """Every split's uint8 faces and labels, moved to the training device once (FER-2013: 83 MB), and the one
    generator the batched augmentation draws from, seeded by (seed, rank, epoch): a seeded run repeats, ranks
    differ."""

    def __init__(self) -> None:
        self.tensors: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.pipelines: dict[str, BatchedPipeline] = {}
        self.generator = torch.Generator()
        self.seeded: tuple[int, int, str] | None = None

    @staticmethod
    def nbytes(splits: Mapping[str, FaceRecords]) -> int:
        return sum(part.images.nbytes + 8 * len(part.labels) for part in splits.values())

    def fits(self, splits: Mapping[str, FaceRecords], device: torch.device, fraction: float) -> bool:
        free, _ = torch.cuda.mem_get_info(device)
        return self.nbytes(splits) <= fraction * free

    def get(
        self, splits: Mapping[str, FaceRecords], split: str, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (split, str(device))
        if key not in self.tensors:  # on a CPU, the arrays themselves (no copy)
            part = splits[split]
            images = torch.from_numpy(np.ascontiguousarray(part.images)).to(device)
            self.tensors[key] = images, torch.from_numpy(part.labels.astype(np.int64)).to(device)
        return self.tensors[key]

    def seed_epoch(self, epoch: int, rank: int, device: torch.device) -> None:
        if self.seeded == (epoch, rank, str(device)):
            return
        if self.generator.device != device:
            self.generator = torch.Generator(device)
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # seed_everything's
        self.generator.manual_seed(int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0]))
        self.seeded = (epoch, rank, str(device))


class FERDataModule(LightningDataModule):
    """FER-2013 (CSV or folders, detected from ``root``) or, with ``synthetic`` set, generated faces.

    ``synthetic`` maps a split to images per class, e.g. ``{train: 300, val: 100, test: 100}``.
    """

    # The level of the cleaning and images-per-class tables: run.py lowers it to DEBUG in a sweep's jobs after the
    # first, so a sweep prints them once.
    tables_level: int = logging.INFO

    def __init__(
        self,
        root: str | None,
        synthetic: Mapping[str, int] | None = None,
        image_size: int = 48,
        crop_size: int | None = None,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        augment: bool = False,
        augmentation: Mapping[str, A.BasicTransform] | None = None,
        mean: float = 0.5134,
        std: float = 0.3066,
        clean: bool = True,
        cleaning: CleaningRules | None = None,
        unknown_classes: UnknownClasses = "error",
        max_dropped_fraction: float = 0.05,
        cache_dir: str | None = None,
        report_dir: str | None = None,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        on_device: OnDevice = "auto",
        ten_crop_train: bool = False,
        device_memory_fraction: float = 0.5,
    ) -> None:
        super().__init__()
        if root is None and not synthetic:
            raise ValueError("data.root is null and data.synthetic is not set: give one of them")
        check_value("data.batch_size", batch_size, int, 1)
        check_value("data.image_size", image_size, int, 1)
        check_value("data.val_fraction", val_fraction, float, 0, 1, high_open=True)
        check_choice("data.unknown_classes", unknown_classes, ("error", "skip"))
        check_value("data.max_dropped_fraction", max_dropped_fraction, float, 0, 1)
        if on_device not in ("auto", True, False):
            raise ValueError(f"data.on_device={on_device!r}: expected auto, true or false")
        check_value("data.device_memory_fraction", device_memory_fraction, float, 0, 1, low_open=True)
        if ten_crop_train and not (augment and crop_size):
            raise ValueError("data.ten_crop_train=true trains ten crops of data.crop_size: set data.crop_size too")
        self.root = root
        self.synthetic = dict(synthetic) if synthetic else None
        self.clean = clean
        self.cleaning = cleaning or CleaningRules()
        self.unknown_classes = unknown_classes
        self.max_dropped_fraction = max_dropped_fraction
        self.cache_dir = cache_dir
        self.report_dir = Path(report_dir) if report_dir else None
        self.batch_size = batch_size
        self.crop_size = crop_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        # Auto: one core per worker, leaving one for the training loop, at most 4 (faces are already in
        # memory, so workers only augment); pinned memory only where there is a CUDA device to copy to.
        self.num_workers = num_workers if num_workers is not None else max(0, min(4, (os.cpu_count() or 1) - 1))
        self.pin_memory = pin_memory if pin_memory is not None else torch.cuda.is_available()
        self.on_device: OnDevice = on_device
        self.ten_crop_train = ten_crop_train
        self.device_memory_fraction = device_memory_fraction
        self.resident = ResidentFaces()
        self.device_path: bool | None = None  # decided under the first Trainer (faces_on_device)
        train_steps = (augmentation or {}).values() if augment else ()
        for name, step in (augmentation or {}).items() if augment else ():
            size = getattr(step, "size", None)  # RandomResizedCrop's output side
            if size is not None and tuple(size) != (FACE_SIZE, FACE_SIZE):
                raise ValueError(
                    f"data.augmentation.{name}: {type(step).__name__} size={list(size)} changes the face's side; "
                    f"augmentation runs on the {FACE_SIZE}x{FACE_SIZE} face, before data.image_size and "
                    f"data.crop_size: give size [{FACE_SIZE}, {FACE_SIZE}]"
                )
        # "whole": uncropped faces for ten-crop TTA, which takes its own crops of crop_size.
        self.transforms = {
            "train": build_transform(image_size, mean, std, train_steps, crop_size, "random"),
            "val": build_transform(image_size, mean, std, (), crop_size, "center"),
            "whole": build_transform(image_size, mean, std),
        }
        self.worker_release = WorkerRelease()
        self.splits: dict[str, FaceRecords] = {}
        self.cleaning_report = pd.DataFrame(columns=REPORT_COLUMNS)
        self.train_hashes: frozenset[bytes] = frozenset()  # the train split's faces as read, before cleaning

    def load_records(self) -> tuple[FaceRecords, list[Rejected]]:
        if self.synthetic is None:
            return load_fer(self.root, self.cache_dir, self.unknown_classes)
        parts = []
        for index, (origin, split) in enumerate(zip(("Training", "PublicTest", "PrivateTest"), SPLITS, strict=True)):
            images, labels = make_synthetic_faces(
                self.synthetic[split], np.random.default_rng([self.split_seed, index])
            )
            parts.append(
                FaceRecords(
                    images,
                    labels,
                    np.full(len(labels), origin),
                    np.array([f"synthetic:{split}:{i}" for i in range(len(labels))]),
                )
            )
        return FaceRecords.concat(parts), []

    def check_source(self) -> None:
        """A ``data.root`` that holds no FER-2013, said before a run writes anything (its loggers' folders): one line,
        and the run folder is taken back (core/entry.py)."""
        if self.synthetic is None:
            kind, path = find_source(self.root)
            if kind == "folders" and self.unknown_classes == "error":  # "skip" lists them when the data is read
                check_class_folders(path, "error")

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:  # read, split and clean once, whatever the stage
            self.splits = self.prepare_splits()
        if stage == "fit" and (not len(self.splits["train"]) or not len(self.splits["val"])):
            raise ValueError(f"data.root={self.root}: the train or val split is empty, see the table above")

    def prepare_splits(self) -> dict[str, FaceRecords]:
        records, rejected = self.load_records()
        if rejected and not self.clean:
            first = rejected[0]
            raise ValueError(
                f"{len(rejected)} record(s) of data.root={self.root} cannot be read, first {first.source}: "
                f"{first.detail}. Set data.clean=true to drop them and list each in cleaning_report.csv"
            )
        check_dropped_share(len(records), rejected, self.max_dropped_fraction, self.root)
        index = assign_splits(records, self.val_fraction, self.split_seed)
        self.train_hashes = frozenset(pixel_hashes(records.images[index["train"]]).tolist())
        if self.clean:
            index, self.cleaning_report = clean_splits(records, index, rejected, self.cleaning)
            self.write_cleaning_report(self.cleaning_report)
        # The evaluated splits in a seeded, class-stratified order: a limited run scores a representative sample.
        index = {
            split: rows if split == "train" else rows[stratified_order(records.labels[rows], self.split_seed)]
            for split, rows in index.items()
        }
        splits = {split: records.subset(index[split]) for split in SPLITS}
        table = split_table({split: part.labels for split, part in splits.items()})
        if rank_zero_only.rank == 0:  # once per run, not once per DDP process
            log.log(
                self.tables_level, "Images per class and split (%s):\n%s", self.root or "synthetic", table.to_string()
            )
        return splits

    @rank_zero_only
    def write_cleaning_report(self, report: pd.DataFrame) -> None:
        summary = summarize(report).to_string(index=False) if len(report) else "nothing found"
        log.log(self.tables_level, "Cleaning listed %d records:\n%s", len(report), summary)
        if self.report_dir is not None:
            write_csv(report, self.report_dir / "cleaning_report.csv")

    def copy_in_train(self, split: str) -> np.ndarray:
        """Per face of ``split``, whether an exact pixel copy of it is in the train split as read (before cleaning
        drops such copies): the faces a report scores apart, since a net may have learnt them by heart."""
        return copies_in(self.splits[split].images, self.train_hashes)

    @property
    def train_class_counts(self) -> np.ndarray:
        return np.bincount(self.splits["train"].labels, minlength=NUM_CLASSES)

    def dataloader(self, split: str, train: bool = False, whole: bool = False) -> DataLoader:
        """Any split in file order with the plain pipeline; ``train`` shuffles and augments (if enabled);
        ``whole`` gives the uncropped faces (for ten-crop TTA). Under a Trainer whose device the faces are resident
        on (``data.on_device``), batches of indices, turned into faces in ``on_after_batch_transfer``."""
        pipeline = "train" if train else "whole" if whole else "val"
        drop_last = train and len(self.splits[split]) > self.batch_size  # no 1-image BatchNorm batch
        if self.trainer is not None and not whole and self.faces_on_device():
            return DataLoader(
                FaceIndices(split, len(self.splits[split])),
                batch_size=self.batch_size,
                shuffle=train,
                drop_last=drop_last,
                collate_fn=FaceIndices.collate,
            )
        if self.ten_crop_train and train:
            raise ValueError("data.ten_crop_train=true runs on the training device: set data.on_device=true")
        if self.num_workers == 0:  # augmenting in this process: seeded from the run's seed
            self.transforms[pipeline].set_random_seed(augmentation_seed(rank_zero_only.rank))
        return DataLoader(
            FaceDataset(self.splits[split], self.transforms[pipeline]),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            worker_init_fn=functools.partial(init_worker, release=self.worker_release) if self.num_workers else None,
        )

    def faces_on_device(self) -> bool:
        """``data.on_device`` for this Trainer's device, decided once: ``auto`` is the path the benchmark measured
        faster there (``ON_DEVICE_AUTO``). Faces that would take more than ``data.device_memory_fraction`` of a GPU's
        free memory stay with the workers, said in one line. The recipe is translated here, so a transform the
        device path cannot run stops the run before any training."""
        if self.device_path is None:
            device = self.trainer.strategy.root_device
            wanted = ON_DEVICE_AUTO.get(device.type, False) if self.on_device == "auto" else bool(self.on_device)
            fraction = self.device_memory_fraction
            if wanted and device.type == "cuda" and not self.resident.fits(self.splits, device, fraction):
                log.warning(
                    "data.on_device=%s: the faces (%.0f MB) take more than %.0f%% of %s's free memory "
                    "(data.device_memory_fraction); DataLoader workers feed it instead",
                    self.on_device, self.resident.nbytes(self.splits) / 2**20, 100 * fraction, device,
                )  # fmt: skip
                wanted = False
            if wanted:
                self.device_pipeline("train"), self.device_pipeline("val")
                unused = f"; data.num_workers={self.num_workers} unused" if self.num_workers else ""
                if rank_zero_only.rank == 0:
                    log.info(
                        "Faces resident on %s (data.on_device=%s): batches are gathered and augmented there, "
                        "no DataLoader workers%s", device, self.on_device, unused,
                    )  # fmt: skip
            self.device_path = wanted
        return self.device_path

    def on_after_batch_transfer(self, batch: object, dataloader_idx: int) -> object:
        """On the device path, a batch of indices becomes faces and labels there: read from the resident split,
        augmented with a parameter set per face (train), cropped and normalised, as the workers would."""
        if not isinstance(batch, IndexBatch):
            return batch
        images, labels = self.resident.get(self.splits, batch.split, batch.index.device)
        faces, labels = images[batch.index], labels[batch.index]
        if batch.split != "train" or not self.trainer or not self.trainer.training:
            return self.device_pipeline("val")(faces, self.resident.generator), labels
        pipeline = self.device_pipeline("train")
        self.resident.seed_epoch(self.trainer.current_epoch, self.trainer.global_rank, batch.index.device)
        augmented = pipeline(faces, self.resident.generator)
        return augmented, labels.repeat_interleave(pipeline.views)

    def device_pipeline(self, name: str) -> BatchedPipeline:
        """The albumentations pipeline ``name`` (train, val) as the device path runs it (data/batched.py)."""
        if name not in self.resident.pipelines:
            ten_crops = self.crop_size if name == "train" and self.ten_crop_train else None
            self.resident.pipelines[name] = BatchedPipeline(self.transforms[name], ten_crop_size=ten_crops)
        return self.resident.pipelines[name]

    def on_exception(self, exception: BaseException) -> None:
        """The run stops (an interrupt, an error): its workers may now be terminated (WorkerRelease)."""
        self.worker_release.release()

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")
