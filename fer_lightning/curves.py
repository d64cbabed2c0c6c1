"""python -m fer_lightning.curves 'runs=[<run>,<run>]': training runs' val curves on the same axes, against the epoch
and against minutes, read back from their TensorBoard events (so runs of older code and resumed runs draw too)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.config import CONFIG_DIR
from fer_lightning.files import write_atomically
from fer_lightning.figures import plt

log = logging.getLogger(__name__)


def run_curve(run: Path, metric: str) -> pd.DataFrame:
    """(epoch, minutes, value) of ``metric`` in a run's tensorboard/ events; minutes since the run's first event
    (its logger's start, a few seconds before fitting)."""
    folder = run / "tensorboard"
    if not folder.is_dir():
        raise FileNotFoundError(f"{run}: no tensorboard/ folder (not a training run folder)")
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    if metric not in events.Tags()["scalars"]:
        raise ValueError(f"{run}: no {metric!r} in its TensorBoard events (has {sorted(events.Tags()['scalars'])[:8]}...)")
    start = events.FirstEventTimestamp()
    points = events.Scalars(metric)
    return pd.DataFrame({"epoch": [p.step + 1 for p in points], "minutes": [(p.wall_time - start) / 60 for p in points],
                         "value": [p.value for p in points]}).drop_duplicates("epoch", keep="last")


def curves_figure(curves: dict[str, pd.DataFrame], metric: str) -> plt.Figure:
    """Two panels sharing the y axis: per epoch (what a recipe reaches) and per minute (what it costs here)."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    for label, curve in curves.items():
        best = curve["value"].max()
        for ax, x in zip(axes, ("epoch", "minutes")):
            ax.plot(curve[x], curve["value"], marker="o", markersize=2.5, label=f"{label} (best {best:.3f})")
    axes[0].set(xlabel="epoch", ylabel=metric)
    axes[1].set(xlabel="minutes since the run started")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    figure.suptitle(f"{metric} of each run", fontsize=11)
    return figure


def plot_curves(runs: Sequence[str], labels: Sequence[str] | None, metric: str, file: Path) -> dict[str, pd.DataFrame]:
    """Write the figure (PNG, written whole) and each run's points as CSV beside it; return the curves."""
    if labels and len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries for {len(runs)} runs: give one per run, or none")
    curves = {label: run_curve(Path(run), metric) for run, label in zip(runs, labels or [Path(r).name for r in runs])}
    figure = curves_figure(curves, metric)
    write_atomically(file, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    plt.close(figure)
    table = pd.concat([c.assign(run=label) for label, c in curves.items()], ignore_index=True)
    write_atomically(file.with_suffix(".csv"), lambda tmp: table.to_csv(tmp, index=False))
    log.info("Curves of %d runs: %s (points in %s)", len(curves), file, file.with_suffix(".csv").name)
    return curves


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="curves")
def main(cfg: DictConfig) -> None:
    plot_curves(cfg.runs, cfg.labels, cfg.metric, Path(cfg.file or Path(cfg.paths.output_dir) / "curves.png"))


if __name__ == "__main__":
    main()
