"""The report files read like sklearn's text report, and a confusion matrix seen alone says its split, accuracy
and run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.figures import confusion_matrix_figure, plt
from fer_lightning.evaluation import reports
from fer_lightning.evaluation.predictions import ReportSettings, SplitPredictions

SETTINGS = ReportSettings(ece_bins=15, misclassified_per_class=0, saliency_per_class=0)


def predictions(n: int = 70, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = np.arange(n) % len(EMOTIONS)
    probabilities = rng.random((n, len(EMOTIONS)))
    probabilities[np.arange(n)[: n // 2], true[: n // 2]] += 1  # half right for sure
    return true, probabilities


def markdown_rows(text: str) -> dict[str, list[str]]:
    lines = [
        line for line in text.splitlines() if line.startswith("|") and not line.startswith("|:") and "---" not in line
    ]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return {row[0]: row[1:] for row in cells[1:]}


def test_classification_report_markdown_has_integer_support_and_blank_cells_not_nan(tmp_path: Path) -> None:
    true, probabilities = predictions()
    reports.write_split_report(
        SplitPredictions("test", np.array([f"face_{i}.png" for i in range(len(true))]), true, probabilities),
        tmp_path,
        SETTINGS,
        run_name="outputs/train/runs/x",
    )
    text = (tmp_path / "classification_report.md").read_text()
    rows = markdown_rows(text)
    assert "nan" not in text.lower() and "Run: outputs/train/runs/x" in text
    assert rows["angry"][3] == "10" and rows["macro avg"][3] == "70" and rows["weighted avg"][3] == "70"
    precision, recall, f1, support = rows["accuracy"]
    assert (
        precision == ""
        and recall == ""
        and support == "70"
        and float(f1) == pytest.approx((probabilities.argmax(1) == true).mean(), abs=1e-4)
    )
    csv = pd.read_csv(tmp_path / "classification_report.csv", index_col=0)
    assert csv["support"].dtype.kind == "i" and pd.isna(csv.loc["accuracy", "precision"])


def test_confusion_matrix_title_carries_accuracy_and_run_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = []
    monkeypatch.setattr(
        reports, "confusion_matrix_figure", lambda *a, **k: drawn.append(confusion_matrix_figure(*a, **k)) or drawn[-1]
    )
    true, probabilities = predictions()
    accuracy = (probabilities.argmax(1) == true).mean()
    reports.write_split_report(
        SplitPredictions("test", np.array(["f"] * len(true)), true, probabilities),
        tmp_path,
        SETTINGS,
        run_name="my_run",
    )
    texts = [t.get_text() for t in drawn[0].axes[0].texts] + [drawn[0].axes[0].get_title(loc="left")]
    assert any(f"test: accuracy {accuracy:.1%}" in t for t in texts) and "my_run" in texts
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 10_000


def test_confusion_matrix_figure_shows_rates_and_counts_and_keeps_its_old_call() -> None:
    counts = np.diag([3, 1, 2, 4, 0, 5, 6]) + 1
    figure = confusion_matrix_figure(counts, EMOTIONS)  # the old call: no subtitle
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert len(figure.axes) == 1 and figure.axes[0].get_title(loc="left") == "Test confusion matrix"
    assert "0.50" in texts and "4" in texts  # angry: 4 of 8 right (rate), and the raw count beside it
    plt.close(figure)


def test_long_subtitles_fit_and_rows_with_no_faces_show_no_rates(tmp_path: Path) -> None:
    from fer_lightning.core.figures import write_png
    from fer_lightning.evaluation.calibration import reliability_bins, reliability_figure

    run = "/work/outputs/train/multiruns/2026-11-29_17-50-57_416036/12/checkpoints/epoch029-val_acc0.6612.ckpt"
    counts = np.diag([3, 1, 2, 4, 0, 5, 6]) + 1
    counts[1] = 0  # disgust: no faces in this split
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(7), 200)
    figures = [
        confusion_matrix_figure(counts, EMOTIONS, "test: accuracy 66.1% (3,589 faces)", subtitle=run),
        reliability_figure({"before": reliability_bins(probabilities, rng.integers(0, 7, 200), 15)}, "ECE", run),
    ]
    for number, figure in enumerate(figures):
        write_png(figure, tmp_path / f"{number}.png")  # drawn at the size it is written
        renderer = figure.canvas.get_renderer()
        width = figure.bbox.width
        for text in figure.axes[0].texts:
            box = text.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= width, text.get_text()
        assert any(t.get_text().startswith("…") and t.get_text().endswith("0.6612.ckpt") for t in figure.axes[0].texts)
        plt.close(figure)
    texts = [t.get_text() for t in figures[0].axes[0].texts]
    assert "no faces" in texts and len(texts) == 2 * 6 * 7 + 2  # rate and count of the 6 rows with faces, 2 lines
