"""Which numbers a person reads in percent (core/units.py)."""

from __future__ import annotations

import pytest

from fer_lightning.core.units import in_percent, shown


@pytest.mark.parametrize("name", ["val/acc", "val/acc_best", "test/precision", "test/recall", "test/f1_happy", "f1"])
def test_fractions_read_in_percent(name: str) -> None:
    assert in_percent(name)


@pytest.mark.parametrize("name", ["val/loss", "train/lr", "train/lr_backbone", "epochs", "ece", "val/accuracy_x"])
def test_other_numbers_keep_their_unit(name: str) -> None:
    assert not in_percent(name)


def test_a_line_shows_fractions_in_percent_and_other_numbers_to_four_digits() -> None:
    assert shown("val/acc", 0.59837) == "59.84%" and shown("f1", 0.5) == "50.00%"
    assert shown("val/loss", 1.234567) == "1.235" and shown("ece", 0.029712) == "0.02971"
