"""Val curves of several runs on one figure, read back from their TensorBoard events."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.tools.curves import curve_summary, first_reached, plot_curves


def fake_run(folder: Path, values: list[float], steps_per_epoch: int = 1) -> Path:
    with SummaryWriter(str(folder / "tensorboard")) as writer:
        for epoch, value in enumerate(values):
            writer.add_scalar("val/acc", value, (epoch + 1) * steps_per_epoch - 1)
    return folder


def test_two_runs_share_the_axes_and_their_points_are_kept(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", [0.4, 0.5, 0.55])
    b = fake_run(tmp_path / "b", [0.3, 0.6], steps_per_epoch=380)  # older runs logged against the global step
    file = tmp_path / "docs" / "curves.png"
    curves = plot_curves([str(a), str(b)], ["recipe", "published"], "val/acc", file)
    assert file.stat().st_size > 10_000 and list(curves) == ["recipe", "published"]
    points = pd.read_csv(file.with_suffix(".csv"))
    assert points.groupby("run")["epoch"].max().to_dict() == {"published": 2, "recipe": 3}
    assert points.loc[points["run"] == "published", "value"].round(3).tolist() == [0.3, 0.6]
    assert (points["minutes"] >= 0).all()
    reached = first_reached(curves["recipe"], [0.5, 0.6])
    assert reached[0.5][0] == 2 and reached[0.5][1] >= 0 and reached[0.6] is None


def test_a_folder_without_events_or_the_metric_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no tensorboard/ folder"):
        plot_curves([str(tmp_path)], None, "val/acc", tmp_path / "x.png")
    run = fake_run(tmp_path / "run", [0.5])
    with pytest.raises(ValueError, match="no 'val/f1'"):
        plot_curves([str(run)], None, "val/f1", tmp_path / "x.png")
    with pytest.raises(ValueError, match="one per run"):
        plot_curves([str(run)], ["a", "b"], "val/acc", tmp_path / "x.png")


def test_a_resumed_run_is_drawn_against_minutes_of_fitting_without_the_pause(tmp_path: Path) -> None:
    from fer_lightning.tools.curves import run_curve

    folder = tmp_path / "run" / "tensorboard"
    # (start, [(epoch, value, minutes into the stretch)]): the second stretch resumed about an hour later.
    for start, points in ((1000.0, [(0, 0.4, 1), (1, 0.5, 2)]), (5000.0, [(2, 0.6, 1)])):
        with patch("time.time", return_value=start):  # the events file's first event: the stretch's start
            writer = SummaryWriter(str(folder))
        for step, value, minutes in points:
            writer.add_scalar("val/acc", value, step, walltime=start + 60 * minutes)
        writer.close()
    curve = run_curve(tmp_path / "run", "val/acc")
    assert curve["epoch"].tolist() == [1, 2, 3]
    assert curve["minutes"].round(6).tolist() == [1.0, 2.0, 3.0]


def test_the_summary_gives_the_best_epoch_the_pace_and_the_time_to_each_threshold() -> None:
    curve = pd.DataFrame({"epoch": [1, 2, 3, 4], "minutes": [0.5, 1.0, 1.5, 2.0], "value": [0.3, 0.62, 0.58, 0.61]})
    line = curve_summary(curve, "val/acc", [0.6, 0.7])
    assert line == (
        "best val/acc 62.00% at epoch 2; 4 epochs in 2.0 min of fitting (2.0 epochs per minute); "
        ">= 60.00% at epoch 2, 1.0 min; >= 70.00% not reached"
    )
    assert curve_summary(curve.set_axis([10, 11, 12, 13]), "val/acc", [0.6, 0.7]) == line  # a slice of a longer curve
