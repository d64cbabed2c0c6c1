"""The shared figure helpers (core/figures.py): no text cut at the size a figure is written."""

from __future__ import annotations

from pathlib import Path

from fer_lightning.core.figures import class_rows_figure, plt, write_png


def test_the_title_of_a_one_column_grid_is_wrapped_inside_the_figure(tmp_path: Path) -> None:
    title = "Grad-CAM on test faces: true class per row, right then wrong; title = predicted (red: wrong)"
    figure, _ = class_rows_figure(1, (1.3, 1.45), title)
    write_png(figure, tmp_path / "grid.png")
    box = figure._suptitle.get_window_extent(figure.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width
    assert " ".join(figure._suptitle.get_text().split()) == title  # wrapped, nothing dropped
    plt.close(figure)
