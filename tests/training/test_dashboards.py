"""TensorBoard's Custom Scalars layout (training/dashboards.py)."""

from __future__ import annotations

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.training.dashboards import custom_scalars_layout


def test_per_class_f1_is_one_chart_per_class() -> None:
    per_class = custom_scalars_layout()["val F1 per class"]
    assert list(per_class) == [f"F1 {e}" for e in EMOTIONS]
    assert all(chart == ["Multiline", [f"^val/f1_{e}$"]] for e, chart in zip(EMOTIONS, per_class.values(), strict=True))
