"""python -m fer_lightning.bench: the numbers behind the README's speed claims, measured in one run."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import hydra
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

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


def bench_load(cfg: DictConfig) -> None:
    """Cold decode (an empty cache), warm start from the cache, and cleaning from the decoded arrays."""
    root = cfg.data.root
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        records, rejected = load_fer(root, cache_dir)
        cold = time.perf_counter() - start
        warm = seconds(lambda: load_fer(root, cache_dir), cfg.repeats)
    index = assign_splits(records, cfg.data.val_fraction, cfg.seed)
    rules: CleaningRules = instantiate(cfg.data.cleaning)
    cleaning = seconds(lambda: clean_splits(records, index, rejected, rules), cfg.repeats)
    print(f"load  {root}: {len(records)} faces, {len(rejected)} unreadable")
    print(f"load  cold (decode + write cache): {cold:8.2f} s")
    print(f"load  warm (from cache):           {warm:8.2f} s   ({cold / warm:.0f}x faster)")
    print(f"load  split + clean:               {seconds(lambda: assign_splits(records, cfg.data.val_fraction, cfg.seed), 1) + cleaning:8.2f} s")


SECTIONS = {"load": bench_load}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="bench")
def main(cfg: DictConfig) -> None:
    np.random.seed(cfg.seed)
    for section in cfg.sections:
        if section not in SECTIONS:
            raise ValueError(f"bench sections={list(cfg.sections)}: unknown {section!r}, expected some of {list(SECTIONS)}")
        SECTIONS[section](cfg)


if __name__ == "__main__":
    main()
