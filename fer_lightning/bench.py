"""python -m fer_lightning.bench: the numbers behind the README's speed claims, measured in one run.

Training throughput goes through the project's own path (Trainer, datamodule, augmentation, metrics)
and through a plain PyTorch loop over the same net, batches, precision and memory format; the
ratio says what the framework costs. Rates are best-of-``repeats``, alternating the two paths.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch.utils.flop_counter import FlopCounterMode

from fer_lightning.config import CONFIG_DIR
from fer_lightning.data.cache import load_fer
from fer_lightning.data.cleaning import CleaningRules, clean_splits
from fer_lightning.data.splits import assign_splits


def seconds(work: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` wall-clock timings: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def train_cfg(cfg: DictConfig, model: str, **data: object) -> DictConfig:
    """The real train config for ``model`` (composed inside this Hydra app) with the bench's own data
    config, batch size and ``data`` changes."""
    tcfg = compose("train", overrides=[f"model={model}", f"seed={cfg.seed}"])
    with open_dict(tcfg):
        tcfg.data = cfg.data.copy()
        tcfg.data.merge_with({"batch_size": cfg.batch_size, **data})
    return tcfg


def bench_load(cfg: DictConfig, results: dict[str, float]) -> None:
    """Cold decode (an empty cache), warm start from the cache, and cleaning from the decoded arrays."""
    root = cfg.data.root
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        records, rejected = load_fer(root, cache_dir)
        cold = time.perf_counter() - start
        warm = seconds(lambda: load_fer(root, cache_dir), cfg.repeats)
    rules: CleaningRules = instantiate(cfg.data.cleaning)
    clean = seconds(lambda: clean_splits(records, assign_splits(records, cfg.data.val_fraction, cfg.seed), rejected, rules), cfg.repeats)
    print(f"load  {root}: {len(records)} faces, {len(rejected)} unreadable")
    print(f"load  cold (decode + write cache): {cold:8.2f} s")
    print(f"load  warm (from cache):           {warm:8.2f} s   ({cold / warm:.0f}x faster)")
    print(f"load  split + clean:               {clean:8.2f} s")


def bench_matmul(cfg: DictConfig, results: dict[str, float]) -> None:
    """Peak GFLOP/s of one large matmul, the ceiling the models' achieved rates are compared with."""
    n = cfg.matmul_size
    peaks = {}
    for dtype in (torch.bfloat16, torch.float32):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        peaks[str(dtype).split(".")[-1]] = 2 * n**3 / seconds(lambda: a @ b, 5) / 1e9
    print("matmul peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    results["peak_bf16"] = peaks["bfloat16"]


def batches(loader: torch.utils.data.DataLoader) -> Iterator:
    while True:
        yield from loader


def bench_data(cfg: DictConfig, results: dict[str, float]) -> None:
    """The data pipeline alone (decode-free: faces are in memory), raw and augmented."""
    for augment in (False, True):
        datamodule = instantiate(train_cfg(cfg, "cnn", augment=augment).data)
        datamodule.setup("fit")
        stream = batches(datamodule.train_dataloader())
        next(stream)  # workers up
        elapsed = seconds(lambda: [next(stream) for _ in range(cfg.data_batches)], cfg.repeats)
        rate = cfg.data_batches * cfg.batch_size / elapsed
        results[f"data_{'augmented' if augment else 'raw'}"] = rate
        print(f"data  {'augmented' if augment else 'raw':9s} pipeline, {datamodule.num_workers} worker(s): {rate:8.0f} img/s")


class StepTimer(L.Callback):
    """Timestamps of training batch starts, after ``warmup`` batches: data loading and the whole step count."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.stamps = warmup, []

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.warmup:
            self.stamps.append(time.perf_counter())

    def rate(self, batch_size: int) -> float:
        return (len(self.stamps) - 1) * batch_size / (self.stamps[-1] - self.stamps[0])


def project_rate(tcfg: DictConfig, steps: int, warmup: int) -> float:
    datamodule, model = instantiate(tcfg.data), instantiate(tcfg.model)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator=tcfg.trainer.accelerator, devices=1, precision=tcfg.trainer.precision, max_steps=warmup + steps + 1,
        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.rate(tcfg.data.batch_size)


def plain_rate(tcfg: DictConfig, steps: int, warmup: int) -> float:
    """The same net, optimizer, batches, autocast and memory format in a bare loop: no Trainer, no metrics."""
    datamodule, model = instantiate(tcfg.data), instantiate(tcfg.model)
    datamodule.setup("fit")
    net = model.net
    optimizer = model.configure_optimizers()["optimizer"]
    bf16 = str(tcfg.trainer.precision).startswith("bf16")
    memory = torch.channels_last if tcfg.model.channels_last else torch.contiguous_format
    stream = batches(datamodule.train_dataloader())
    net.train()
    start = 0.0
    for step in range(warmup + steps + 1):
        if step == warmup:
            start = time.perf_counter()
        images, labels = next(stream)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = F.cross_entropy(net(images.contiguous(memory_format=memory)).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (steps + 1) * tcfg.data.batch_size / (time.perf_counter() - start)


def flops_per_image(tcfg: DictConfig) -> float:
    """Forward + backward FLOPs of one training image, counted by torch.utils.flop_counter."""
    net = instantiate(tcfg.model).net
    x = torch.randn(8, 1, tcfg.data.image_size, tcfg.data.image_size)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / 8


def bench_train(cfg: DictConfig, results: dict[str, float]) -> None:
    if "peak_bf16" not in results:
        bench_matmul(cfg, results)
    peak = results["peak_bf16"]
    print(f"train batch {cfg.batch_size}, {cfg.steps} timed steps, best of {cfg.repeats}; img/s and project/plain ratio")
    print(f"{'model':10s} {'project':>9s} {'plain':>9s} {'ratio':>6s} {'GFLOP/img':>10s} {'GFLOP/s':>8s}")
    for name in cfg.models:
        tcfg = train_cfg(cfg, name)
        project, plain = 0.0, 0.0
        for _ in range(cfg.repeats):
            project = max(project, project_rate(tcfg, cfg.steps, cfg.warmup_steps))
            plain = max(plain, plain_rate(tcfg, cfg.steps, cfg.warmup_steps))
        flops = flops_per_image(tcfg)
        results[f"train_{name}"] = project
        print(f"{name:10s} {project:9.0f} {plain:9.0f} {project / plain:6.2f} {flops / 1e9:10.3f} "
              f"{flops * project / 1e9:8.0f}  ({flops * project / 1e9 / peak:.0%} of the bf16 matmul peak)")
    if "data_augmented" in results and "train_cnn" in results:
        print(f"data  augmented pipeline / scratch CNN training rate: {results['data_augmented'] / results['train_cnn']:.1f}x")


def bench_startup(cfg: DictConfig, results: dict[str, float]) -> None:
    """Seconds from composing the config to the first training step (scratch CNN), cold and warm cache;
    the interpreter's import of the package is timed apart, in a fresh process."""
    import_s = (seconds(lambda: subprocess.run([sys.executable, "-c", "import fer_lightning.train"], check=True), 1)
                - seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 1))
    with tempfile.TemporaryDirectory() as cache_dir:
        for label in ("cold", "warm"):
            start = time.perf_counter()
            tcfg = train_cfg(cfg, "cnn", cache_dir=cache_dir)
            timer = StepTimer(0)
            datamodule, model = instantiate(tcfg.data), instantiate(tcfg.model)
            L.Trainer(precision=tcfg.trainer.precision, max_steps=1, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      callbacks=[timer]).fit(model, datamodule=datamodule)
            print(f"startup {label} cache: {timer.stamps[0] - start:6.2f} s to the first training step "
                  f"(+ {import_s:.2f} s importing fer_lightning.train)")


SECTIONS = {"load": bench_load, "matmul": bench_matmul, "data": bench_data, "train": bench_train, "startup": bench_startup}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="bench")
def main(cfg: DictConfig) -> None:
    torch.manual_seed(cfg.seed)
    for name in ("lightning.pytorch", "fer_lightning"):  # the numbers, not every run's set-up chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"sections={list(cfg.sections)}: unknown {sorted(unknown)}, expected some of {list(SECTIONS)}")
    if cfg.data.root is None and "load" in cfg.sections:
        with open_dict(cfg):
            cfg.sections = [s for s in cfg.sections if s != "load"]  # synthetic data has nothing to load
    results: dict[str, float] = {}
    for section in cfg.sections:
        SECTIONS[section](cfg, results)


if __name__ == "__main__":
    main()
