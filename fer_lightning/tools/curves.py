"""python -m fer_lightning.curves 'runs=[<run>,<run>]': training runs' val curves on the same axes, against the epoch
and against minutes, read back from their TensorBoard events (so runs of older code and resumed runs draw too)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.core.figures import plt, write_png
from fer_lightning.core.files import write_csv
from fer_lightning.core.units import shown

log = logging.getLogger(__name__)
logging.getLogger("tensorboard").setLevel(logging.WARNING)  # its event reader logs every file it opens at INFO


def run_curve(run: Path, metric: str) -> pd.DataFrame:
    """(epoch, minutes, value) of ``metric``, logged once per epoch, in a run's tensorboard/ events; minutes of
    fitting: within each stretch of the run (one events file per start, a resumed run has several) the time since
    the stretch's first event, after the stretches before it, so the pauses between them do not count."""
    folder = run / "tensorboard"
    if not folder.is_dir():
        raise FileNotFoundError(f"{run}: no tensorboard/ folder (not a training run folder)")
    stretches = []
    for file in sorted(folder.rglob("events.out.tfevents.*")):
        events = EventAccumulator(str(file), size_guidance={"scalars": 0})
        events.Reload()
        points = events.Scalars(metric) if metric in events.Tags()["scalars"] else []
        stretches.append((events.FirstEventTimestamp(), points))
    if not any(points for _, points in stretches):
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        raise ValueError(
            f"{run}: no {metric!r} in its TensorBoard events (has {sorted(events.Tags()['scalars'])[:8]}...)"
        )
    rows, before = [], 0.0  # before: minutes fitted in the earlier stretches
    for start, points in sorted(stretches, key=lambda stretch: stretch[0]):
        rows += [(p.step, before + (p.wall_time - start) / 60, p.value) for p in points]
        if points:
            before += (points[-1].wall_time - start) / 60
    points = pd.DataFrame(rows, columns=["step", "minutes", "value"])
    # One point per epoch: the n-th distinct step is epoch n, whether the run logged against the epoch or (older
    # runs) the global step; a resumed run's re-logged step counts once, with its latest value.
    points = points.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)
    return points.assign(epoch=range(1, len(points) + 1))[["epoch", "minutes", "value"]]


def curves_figure(curves: dict[str, pd.DataFrame], metric: str) -> plt.Figure:
    """Two panels sharing the y axis: per epoch (what a recipe reaches) and per minute (what it costs here)."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, layout="constrained")
    for label, curve in curves.items():
        best = curve["value"].max()
        for ax, x in zip(axes, ("epoch", "minutes"), strict=True):
            ax.plot(curve[x], curve["value"], marker="o", markersize=2.5, label=f"{label} (best {shown(metric, best)})")
    axes[0].set(xlabel="epoch", ylabel=metric)
    axes[1].set(xlabel="minutes of fitting (pauses between the stretches of a resumed run left out)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    figure.suptitle(f"{metric} of each run", fontsize=11)
    return figure


def first_reached(curve: pd.DataFrame, thresholds: Sequence[float]) -> dict[float, tuple[int, float] | None]:
    """Per threshold, the (epoch, minutes) at which the curve first reached it, or None."""
    reached = {}
    for threshold in thresholds:
        hits = curve[curve["value"] >= threshold]
        reached[threshold] = (int(hits["epoch"].iloc[0]), float(hits["minutes"].iloc[0])) if len(hits) else None
    return reached


def curve_summary(curve: pd.DataFrame, metric: str, thresholds: Sequence[float] = ()) -> str:
    """One line per run: its best and when, its pace (epochs per minute of fitting) and its time to each threshold."""
    best = curve.loc[curve["value"].idxmax()]  # by label: the curve need not be indexed 0..n-1
    epochs, minutes = len(curve), float(curve["minutes"].iloc[-1])
    pace = f"{epochs / minutes:.1f} epochs per minute" if minutes > 0 else "no time between its points"
    line = (
        f"best {metric} {shown(metric, best['value'])} at epoch {int(best['epoch'])}; "
        f"{epochs} epochs in {minutes:.1f} min of fitting ({pace})"
    )
    for threshold, reached in first_reached(curve, thresholds).items():
        line += f"; >= {shown(metric, threshold)} " + (
            f"at epoch {reached[0]}, {reached[1]:.1f} min" if reached else "not reached"
        )
    return line


def plot_curves(
    runs: Sequence[str], labels: Sequence[str] | None, metric: str, file: Path, thresholds: Sequence[float] = ()
) -> dict[str, pd.DataFrame]:
    """Write the figure (PNG, written whole) and each run's points as CSV beside it; log when each run first reached
    each threshold (time to accuracy); return the curves."""
    if labels and len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries for {len(runs)} runs: give one per run, or none")
    curves = {
        label: run_curve(Path(run), metric)
        for run, label in zip(runs, labels or [Path(r).name for r in runs], strict=True)
    }
    figure = curves_figure(curves, metric)
    write_png(figure, file)
    plt.close(figure)
    table = pd.concat([c.assign(run=label) for label, c in curves.items()], ignore_index=True)
    write_csv(table, file.with_suffix(".csv"))
    log.info("Curves of %d runs: %s (points in %s)", len(curves), file, file.with_suffix(".csv").name)
    for label, curve in curves.items():
        log.info("%s: %s", label, curve_summary(curve, metric, thresholds))
    return curves


def curves(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """The curves command: ``cfg.file``, or curves.png in the run's folder."""
    file = Path(cfg.file or Path(cfg.paths.output_dir) / "curves.png")
    return plot_curves(cfg.runs, cfg.labels, cfg.metric, file, cfg.thresholds)
