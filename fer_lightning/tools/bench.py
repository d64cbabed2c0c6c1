"""python -m fer_lightning.bench: the numbers behind the README's speed claims, measured in one run.

Training throughput goes through the project's own path (Trainer from conf/trainer, datamodule,
augmentation, metrics) and through a plain PyTorch loop over the same net, batches, loss, optimizer,
precision and memory format; the ratio says what the framework costs. Rates are best-of-``repeats``,
alternating the two paths, so that a disturbance of the machine does not decide the ratio. Everything
runs on the CPU (the project's default trainer; this machine has no GPU).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import partial
from itertools import islice
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from fer_lightning.core.hardware import fastest_precision, precision_choice
from fer_lightning.core.overrides import parse_override
from fer_lightning.core.validation import check_arguments
from fer_lightning.data.cache import load_fer
from fer_lightning.data.cleaning import CleaningRules, clean_splits
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.splits import assign_splits

Results = dict[str, float]


def seconds(work: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` wall-clock timings: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def train_cfg(cfg: DictConfig, model: str, **data: object) -> DictConfig:
    """The real train config for ``model`` (composed inside this Hydra app, plus ``train_overrides``) with
    the bench's own data config, batch size and ``data`` changes."""
    # Random init: speed does not depend on the weights, and ImageNet files may not be here.
    tcfg = compose(
        "train", overrides=[f"model={model}", "model.pretrained=false", f"seed={cfg.seed}", *cfg.train_overrides]
    )
    with open_dict(tcfg):
        tcfg.data = cfg.data.copy()
        tcfg.data.merge_with({"batch_size": cfg.batch_size, **data})
    return tcfg


def check_train_overrides(cfg: DictConfig) -> None:
    """Each model's train config (``train_overrides`` included) holds only keys its parts take, before anything is
    measured: a recipe's key for one model given to another (experiment=scratch_best's model.net.block_dropout on
    vgg16) is one line naming the key, not a TypeError minutes into the run."""
    for model in cfg.models:
        try:
            check_arguments(OmegaConf.to_container(train_cfg(cfg, model), resolve=False))
        except ValueError as error:
            raise ValueError(f"train_overrides={list(cfg.train_overrides)} with model={model}: {error}") from None


def bench_load(cfg: DictConfig, results: Results) -> None:
    """Cold decode (an empty cache), warm start from the cache, and cleaning from the decoded arrays."""
    root = cfg.data.root
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        records, rejected = load_fer(root, cache_dir)
        cold = time.perf_counter() - start
        warm = seconds(lambda: load_fer(root, cache_dir), cfg.repeats)
    rules: CleaningRules = instantiate(cfg.data.cleaning)
    clean = seconds(
        lambda: clean_splits(records, assign_splits(records, cfg.data.val_fraction, cfg.seed), rejected, rules),
        cfg.repeats,
    )
    print(f"load  {root}: {len(records)} faces, {len(rejected)} unreadable")
    print(f"load  cold (decode + write cache): {cold:8.2f} s")
    print(f"load  warm (from cache):           {warm:8.2f} s   ({cold / warm:.0f}x faster)")
    print(f"load  split + clean:               {clean:8.2f} s")


def bench_matmul(cfg: DictConfig, results: Results) -> None:
    """Peak GFLOP/s of one large matmul, the ceiling the models' achieved rates are compared with."""
    n = cfg.matmul_size
    peaks = {}
    for dtype in (torch.bfloat16, torch.float32):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        peaks[str(dtype).split(".")[-1]] = 2 * n**3 / seconds(partial(torch.matmul, a, b), 5) / 1e9
    print(
        "matmul peak: "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
        + f" ({torch.get_num_threads()} threads)"
    )
    results["peak_bf16"], results["peak_fp32"] = peaks["bfloat16"], peaks["float32"]


def batches(loader: DataLoader) -> Iterator:
    """Batches without end, epoch after epoch, as a training loop sees them."""
    while True:
        yield from loader


def take(stream: Iterator, n: int) -> list:
    return list(islice(stream, n))


def bench_data(cfg: DictConfig, results: Results) -> None:
    """The data pipeline alone (decode-free: faces are in memory), raw and augmented."""
    for augment in (False, True):
        datamodule = instantiate(train_cfg(cfg, "cnn", augment=augment).data)
        datamodule.setup("fit")
        stream = batches(datamodule.train_dataloader())
        next(stream)  # workers up
        elapsed = seconds(partial(take, stream, cfg.data_batches), cfg.repeats)
        rate = cfg.data_batches * cfg.batch_size / elapsed
        results[f"data_{'augmented' if augment else 'raw'}"] = rate
        print(
            f"data  {'augmented' if augment else 'raw':9s} pipeline, {datamodule.num_workers} worker(s): "
            f"{rate:8.0f} img/s"
        )


class StepTimer(L.Callback):
    """Timestamps of training batch starts after ``warmup`` batches: an interval is one whole step,
    the wait for its batch included, and nothing of the Trainer's set-up or tear-down."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.stamps = warmup, []

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.warmup:
            self.stamps.append(time.perf_counter())

    def rate(self, batch_size: int) -> float:
        return (len(self.stamps) - 1) * batch_size / (self.stamps[-1] - self.stamps[0])


def project_rate(tcfg: DictConfig, datamodule: FERDataModule, steps: int, warmup: int) -> float:
    """The project's Trainer (conf/trainer: precision, clipping, accumulation...) and LightningModule,
    metrics included; only validation, logging, checkpoints and the progress bar are off."""
    timer = StepTimer(warmup)
    trainer = instantiate(
        tcfg.trainer,
        max_steps=warmup + steps + 1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(instantiate(tcfg.model), datamodule=datamodule)
    return timer.rate(tcfg.data.batch_size)


def plain_rate(tcfg: DictConfig, datamodule: FERDataModule, steps: int, warmup: int) -> float:
    """The same net, loss, optimizer, batches, autocast and memory format in a bare loop: no Trainer, no metrics, no
    schedule (a per-step schedule needs a Trainer's length; the lr does not change a step's cost)."""
    stream = batches(datamodule.train_dataloader())
    return loop_rate(tcfg, lambda step: next(stream), torch.device("cpu"), steps, warmup)


def loop_rate(
    tcfg: DictConfig, batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], device: torch.device, steps: int,
    warmup: int,
) -> float:  # fmt: skip
    """Training faces per second of a bare loop over ``batch(step)``, on ``device``, after ``warmup`` steps."""
    model = instantiate(tcfg.model).to(device)
    net, optimizer = model.net, model.build_optimizer()
    bf16 = str(tcfg.trainer.precision).startswith("bf16")
    memory = torch.channels_last if tcfg.model.channels_last else torch.contiguous_format
    net.train()
    start, faces = 0.0, 0
    for step in range(warmup + steps):
        if step == warmup:
            start, faces = time.perf_counter(), 0
        images, labels = batch(step)
        with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
            logits = net(images.contiguous(memory_format=memory))
        loss = F.cross_entropy(
            logits.float(), labels, weight=model.class_weights, label_smoothing=tcfg.model.label_smoothing
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        faces += len(labels)
    loss.item()  # the device's queue drained: the timed steps are done, not only queued
    return faces / (time.perf_counter() - start)


def flops_per_image(tcfg: DictConfig) -> float:
    """Forward + backward FLOPs of one training image, counted by torch.utils.flop_counter."""
    net = instantiate(tcfg.model).net
    x = torch.randn(8, 1, tcfg.data.image_size, tcfg.data.image_size)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / 8


def bench_train(cfg: DictConfig, results: Results) -> None:
    """Project vs plain loop per model on one shared datamodule (the same faces, split and pipeline)."""
    if "peak_bf16" not in results:
        bench_matmul(cfg, results)
    first = train_cfg(cfg, "cnn", augment=cfg.augment)
    dtype = "bf16" if str(first.trainer.precision).startswith("bf16") else "fp32"  # the matmul the nets run in
    peak = results[f"peak_{dtype}"]
    datamodule = instantiate(first.data)
    datamodule.setup("fit")
    memory = "channels_last" if first.model.channels_last else "contiguous"
    _, why = precision_choice(first.trainer.accelerator)
    print(
        f"precision {first.trainer.precision}; "
        f"the machine's fastest: {fastest_precision(first.trainer.accelerator)} ({why})"
    )
    print(
        f"train {first.trainer.accelerator}, {first.trainer.precision}, {memory}, batch {cfg.batch_size}, "
        f"{'augmented' if cfg.augment else 'raw'} data, {datamodule.num_workers} worker(s); "
        f"{cfg.steps} timed steps after {cfg.warmup_steps}, best of {cfg.repeats}"
    )
    print(
        f"{'model':10s} {'project':>9s} {'plain':>9s} {'ratio':>6s} {'GFLOP/img':>10s} {'GFLOP/s':>8s} {'of peak':>8s}"
    )
    for name in cfg.models:
        tcfg = train_cfg(cfg, name, augment=cfg.augment)
        project, plain = 0.0, 0.0
        for _ in range(cfg.repeats):
            project = max(project, project_rate(tcfg, datamodule, cfg.steps, cfg.warmup_steps))
            loop = device_plain_rate if datamodule.device_path else plain_rate  # fed as the project's run was
            plain = max(plain, loop(tcfg, datamodule, cfg.steps, cfg.warmup_steps))
        flops = flops_per_image(tcfg)
        results[f"train_{name}"], results[f"ratio_{name}"] = project, project / plain
        print(
            f"{name:10s} {project:9.0f} {plain:9.0f} {project / plain:6.2f} {flops / 1e9:10.3f} "
            f"{flops * project / 1e9:8.0f} {flops * project / 1e9 / peak:8.0%}"
        )
    print(
        "      img/s; project = Trainer + datamodule + metrics, plain = bare PyTorch loop; "
        f"of peak = of the {dtype} matmul"
    )


def device_plain_rate(tcfg: DictConfig, datamodule: FERDataModule, steps: int, warmup: int) -> float:
    """A bare PyTorch loop fed as the device path feeds the Trainer: the split's faces resident on the device, a
    shuffled index batch, the same batched augmentation (data/batched.py)."""
    device = torch.device("cuda" if torch.cuda.is_available() and tcfg.trainer.accelerator != "cpu" else "cpu")
    images, labels = datamodule.resident.get(datamodule.splits, "train", device)
    pipeline = datamodule.device_pipeline("train")
    generator = torch.Generator(device).manual_seed(0)
    size, order = tcfg.data.batch_size, torch.randperm(len(labels))

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = order[(step * size) % (len(order) - size) :][:size].to(device)
        return pipeline(images[index], generator), labels[index].repeat_interleave(pipeline.views)

    return loop_rate(tcfg, batch, device, steps, warmup)


def bench_paths(cfg: DictConfig, results: Results) -> None:
    """Train faces/s through the DataLoader-worker path and the device path (faces resident on the training device,
    batched augmentation there), beside a plain loop fed the same resident faces and augmentation."""
    print(
        f"paths {cfg.steps} timed steps after {cfg.warmup_steps}, best of {cfg.repeats}, batch {cfg.batch_size}, "
        f"{'augmented' if cfg.augment else 'raw'} data (faces/s)"
    )
    print(f"{'model':10s} {'workers':>9s} {'device':>9s} {'plain':>9s} {'device/plain':>13s} {'device/workers':>15s}")
    for name in cfg.models:
        rates = {}
        for on_device in (False, True):
            tcfg = train_cfg(cfg, name, augment=cfg.augment, on_device=on_device)
            datamodule = instantiate(tcfg.data)
            datamodule.setup("fit")
            best = 0.0
            for _ in range(cfg.repeats):
                best = max(best, project_rate(tcfg, datamodule, cfg.steps, cfg.warmup_steps))
                if on_device:
                    rates["plain"] = max(
                        rates.get("plain", 0.0), device_plain_rate(tcfg, datamodule, cfg.steps, cfg.warmup_steps)
                    )
            rates["device" if on_device else "workers"] = best
        workers, device, plain = rates["workers"], rates["device"], rates["plain"]
        results[f"paths_{name}_device_over_plain"] = device / plain
        results[f"paths_{name}_device_over_workers"] = device / workers
        print(f"{name:10s} {workers:9.0f} {device:9.0f} {plain:9.0f} {device / plain:13.2f} {device / workers:15.2f}")
    print(f"      workers: {instantiate(train_cfg(cfg, 'cnn').data).num_workers} DataLoader worker(s); device: none")


class StepProfile(L.Callback):
    """Where a training step's time goes, from Lightning's hooks: waiting for the batch (fetch, transfer and, on the
    device path, augmentation), forward (the loss included), backward, optimizer; on a GPU each stamp waits for the
    device (so the parts add up) and host syncs are counted with CUDA's sync debug mode. Per epoch: validation and
    checkpoint writes."""

    PARTS = ("waiting for data", "forward", "backward", "optimizer")

    def __init__(self, warmup: int) -> None:
        self.warmup, self.last_end = warmup, None
        self.times: dict[str, list[float]] = {part: [] for part in self.PARTS}
        self.stamps: dict[str, float] = {}
        self.validation = 0.0
        self.syncs: list[int] = []

    def stamp(self, trainer: L.Trainer, name: str) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.stamps[name] = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        self.stamp(trainer, "start")
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")

    def on_before_backward(self, trainer: L.Trainer, *args: object) -> None:
        self.stamp(trainer, "forward")

    def on_after_backward(self, trainer: L.Trainer, *args: object) -> None:
        self.stamp(trainer, "backward")

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.stamp(trainer, "end")
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
        s = self.stamps
        if trainer.global_step > self.warmup and self.last_end is not None:
            bounds = (self.last_end, s["start"], s["forward"], s["backward"], s["end"])
            for part, a, b in zip(self.PARTS, bounds, bounds[1:], strict=False):
                self.times[part].append(b - a)
        self.last_end = s["end"]

    def on_validation_start(self, trainer: L.Trainer, *args: object) -> None:
        self.stamp(trainer, "validation")

    def on_validation_end(self, trainer: L.Trainer, *args: object) -> None:
        if not trainer.sanity_checking:
            self.validation = time.perf_counter() - self.stamps["validation"]


def profile_one(tcfg: DictConfig, cfg: DictConfig, work_dir: Path) -> None:
    """One epoch of ``cfg.steps`` timed steps (after the warm-up) with full validation and the run's two
    checkpoint callbacks (best by val, last), each write timed."""
    datamodule = instantiate(tcfg.data)
    datamodule.setup("fit")
    profile = StepProfile(cfg.warmup_steps)
    checkpoints = [
        ModelCheckpoint(dirpath=work_dir, filename="best", monitor="val/acc", mode="max"),
        ModelCheckpoint(dirpath=work_dir, filename="last"),
    ]
    trainer = instantiate(
        tcfg.trainer,
        max_epochs=1,
        limit_train_batches=cfg.warmup_steps + cfg.steps + 1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[profile, *checkpoints],
    )
    writes: list[float] = []
    save = trainer.strategy.checkpoint_io.save_checkpoint

    def timed_save(*args: object, **kwargs: object) -> None:
        start = time.perf_counter()
        save(*args, **kwargs)
        writes.append(time.perf_counter() - start)

    trainer.strategy.checkpoint_io.save_checkpoint = timed_save
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(instantiate(tcfg.model), datamodule=datamodule)
    steps = len(profile.times["forward"])
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    per_step = {part: float(np.median(values)) for part, values in profile.times.items()}
    step = sum(per_step.values())
    epoch_steps = len(datamodule.splits["train"]) // tcfg.data.batch_size
    epoch = {"training": step * epoch_steps, "validation": profile.validation, "checkpoint writes": sum(writes)}
    path = "device" if datamodule.faces_on_device() else f"{datamodule.num_workers} worker(s)"
    print(
        f"profile {tcfg.model.net._target_.rsplit('.', 1)[-1]} ({tcfg.data.batch_size} faces a step, {path}, "
        f"{trainer.strategy.root_device.type}, {tcfg.trainer.precision}): {1e3 * step:.1f} ms a step "
        f"(median of {steps})"
    )
    for part, seconds_ in per_step.items():
        print(f"profile   {part:18s} {1e3 * seconds_:8.1f} ms  {seconds_ / step:6.1%}")
    device = trainer.strategy.root_device.type
    print(f"profile   host syncs: {syncs / max(steps, 1):.1f} a step" if device == "cuda" else
          "profile   host syncs: none to count on a CPU (no device queue)")  # fmt: skip
    total = sum(epoch.values())
    print(
        f"profile   an epoch ({epoch_steps} steps): "
        + ", ".join(f"{name} {value:.1f} s ({value / total:.1%})" for name, value in epoch.items())
        + f"; {len(writes)} checkpoint file(s) written"
    )


def bench_profile(cfg: DictConfig, results: Results) -> None:
    """Where the time of a training step and of an epoch goes, per model, on both data paths (StepProfile)."""
    for name in cfg.models:
        for on_device in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                profile_one(train_cfg(cfg, name, augment=cfg.augment, on_device=on_device), cfg, Path(tmp))


class ExitAtFirstStep(L.Callback):
    """Injected into a ``python -m fer_lightning.train`` subprocess by the startup section: writes the
    wall-clock time of the first training batch to ``path`` and ends the process there, as nothing
    after it is measured."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(self, *args: object) -> None:
        Path(self.path).write_text(repr(time.time()))
        os._exit(0)  # no teardown: the DataLoader worker notices its parent is gone and quits


def forwarded_data_overrides() -> list[str]:
    """This command's own ``data...`` overrides, so that the train subprocess reads the same data."""
    own = ("data.batch_size", "data.cache_dir")
    keys = {o: parse_override(o).key for o in HydraConfig.get().overrides.task}
    return [o for o, key in keys.items() if key.split(".")[0] == "data" and key not in own]


def first_step_seconds(cfg: DictConfig, cache_dir: str, work_dir: Path) -> float:
    """Wall-clock seconds from starting the real train command (scratch CNN) to its first training batch."""
    stamp, log = work_dir / "first_step", work_dir / "train.log"
    stamp.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "model=cnn",
        *cfg.train_overrides,
        *forwarded_data_overrides(),
        f"data.batch_size={cfg.batch_size}",
        f"data.cache_dir={cache_dir}",
        "test=false",
        f"hydra.run.dir={work_dir / 'run'}",
        "+callbacks.first_step._target_=fer_lightning.tools.bench.ExitAtFirstStep",
        f"+callbacks.first_step.path={stamp}",
    ]
    start = time.time()
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if not stamp.is_file():
        raise RuntimeError(f"{' '.join(command)}\nnever reached a training step:\n{log.read_text()[-3000:]}")
    return float(stamp.read_text()) - start


def bench_startup(cfg: DictConfig, results: Results) -> None:
    """`python -m fer_lightning.train` (scratch CNN, the user's defaults) from process start to the first
    training batch, in a fresh process: imports, composing, loading and cleaning the data, building the
    model, the Trainer's set-up and its sanity-check validation batches. Cold: an empty decoded-face cache
    (the OS file cache stays warm); warm: the cache the cold run wrote. Python + imports are timed apart,
    and so is `import lightning` (it imports torch, torchvision, torchmetrics, scipy and matplotlib): the
    floor that no change in this project can go below."""

    def python(code: str) -> float:
        return seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True), cfg.repeats)

    floor, imports = python("import lightning"), python("import fer_lightning.train")
    with tempfile.TemporaryDirectory() as tmp:
        cold = first_step_seconds(cfg, f"{tmp}/cache", Path(tmp))
        warm = min(first_step_seconds(cfg, f"{tmp}/cache", Path(tmp)) for _ in range(cfg.repeats))
    results["startup_warm"] = warm
    print(f"startup cold cache: {cold:6.2f} s from `python -m fer_lightning.train` to the first training step")
    print(
        f"startup warm cache: {warm:6.2f} s   (python + imports alone: {imports:.2f} s, "
        f"of which `import lightning` alone: {floor:.2f} s)"
    )


def print_targets(cfg: DictConfig, results: Results) -> None:
    """The speed targets (conf/bench.yaml) next to this run's numbers (those the chosen sections measured)."""
    target = cfg.targets
    checks = [
        (f"project/plain {name} >= {target.ratio}", results[f"ratio_{name}"], results[f"ratio_{name}"] >= target.ratio)
        for name in cfg.models
        if f"ratio_{name}" in results
    ]
    if "data_augmented" in results and "train_cnn" in results:
        times = results["data_augmented"] / results["train_cnn"]
        checks.append(
            (
                f"augmented data / scratch CNN training rate >= {target.data_over_cnn}x",
                times,
                times >= target.data_over_cnn,
            )
        )
    if "startup_warm" in results:
        warm = results["startup_warm"]
        checks.append((f"warm start to first step < {target.warm_start_s} s", warm, warm < target.warm_start_s))
    for label, value, met in checks:
        print(f"target {label:50s} {value:6.2f}  {'met' if met else 'MISSED'}")


SECTIONS = {
    "load": bench_load,
    "matmul": bench_matmul,
    "data": bench_data,
    "train": bench_train,
    "paths": bench_paths,
    "profile": bench_profile,
    "startup": bench_startup,
}


def bench(cfg: DictConfig) -> Results:
    """Run the configured sections, print every number and the targets; return the numbers."""
    torch.manual_seed(cfg.seed)
    for name in ("lightning.pytorch", "fer_lightning"):  # the numbers, not every run's set-up chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=PossibleUserWarning)  # "few workers": the data section measures that
    warnings.filterwarnings("ignore", message=r".*but have no logger configured.*")  # timed runs log nowhere
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"sections={list(cfg.sections)}: unknown {sorted(unknown)}, expected some of {list(SECTIONS)}")
    if cfg.data.root is None and "load" in cfg.sections:
        with open_dict(cfg):
            cfg.sections = [s for s in cfg.sections if s != "load"]  # synthetic data has nothing to load
    check_train_overrides(cfg)
    start = time.perf_counter()
    results: Results = {}
    for section in cfg.sections:
        SECTIONS[section](cfg, results)
    print_targets(cfg, results)
    print(f"bench took {time.perf_counter() - start:.0f} s")
    return results
