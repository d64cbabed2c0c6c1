"""python -m fer_lightning.analyze: what is in the data, and what cleaning found, as files and in TensorBoard."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.figures import plt, write_png
from fer_lightning.core.files import write_csv
from fer_lightning.data import statistics
from fer_lightning.data.cleaning import summarize
from fer_lightning.data.datamodule import FERDataModule

log = logging.getLogger(__name__)


def analyze(cfg: DictConfig) -> Path:
    """Write the analysis of ``cfg.data`` into the run's folder; return that folder."""
    out = Path(cfg.paths.output_dir)
    datamodule: FERDataModule = instantiate(cfg.data)
    datamodule.setup()  # reads (through the cache), splits and cleans exactly as training does
    splits, report, train = datamodule.splits, datamodule.cleaning_report, datamodule.splits["train"]

    counts = statistics.class_counts(splits, report)
    tables = {
        "class_counts": counts,
        "brightness_contrast": statistics.brightness_contrast(train),
        "cleaning_summary": summarize(report),
    }
    figures = {
        "class_distribution": statistics.class_distribution_figure(counts, list(splits)),
        "samples": statistics.sample_grid_figure(train, cfg.samples_per_class, np.random.default_rng(cfg.seed)),
        "mean_faces": statistics.mean_faces_figure(train),
        "intensity_histograms": statistics.intensity_histograms_figure(train),
    }
    with SummaryWriter(str(out / "tensorboard")) as writer:
        for name, table in tables.items():
            write_csv(table, out / f"{name}.csv", index=name != "cleaning_summary")
            writer.add_text(f"analysis/{name}", table.to_markdown() if len(table) else "(empty)")
            log.info("%s:\n%s", name, table.to_string())
        for name, figure in figures.items():
            write_png(figure, out / f"{name}.png")
            writer.add_figure(f"analysis/{name}", figure)
            plt.close(figure)
    log.info("Analysis written to %s", out)
    return out
