"""Face boxes: one overlap measure for a face found twice (detectors) and a box against the truth (detection bench)."""

from __future__ import annotations

import pytest

from fer_lightning.serving.faces import Box, box_overlap


def test_box_overlap_relative_to_the_smaller_box_or_to_the_union() -> None:
    outer, inner, apart = Box(0, 0, 10, 10), Box(5, 5, 5, 5), Box(20, 20, 4, 4)
    assert box_overlap(outer, inner, "smaller") == 1.0  # a box inside another: the same face found twice
    assert box_overlap(outer, inner, "union") == pytest.approx(25 / 100)  # IoU
    half = Box(5, 0, 10, 10)
    assert box_overlap(outer, half, "smaller") == 0.5 and box_overlap(outer, half, "union") == pytest.approx(50 / 150)
    assert box_overlap(outer, apart, "smaller") == box_overlap(outer, apart, "union") == 0.0
