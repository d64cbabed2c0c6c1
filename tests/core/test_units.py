"""Which numbers a person reads in percent (core/units.py)."""

from __future__ import annotations

import pytest

from fer_lightning.core.units import in_percent


@pytest.mark.parametrize("name", ["val/acc", "val/acc_best", "test/precision", "test/recall", "test/f1_happy"])
def test_fractions_read_in_percent(name: str) -> None:
    assert in_percent(name)


@pytest.mark.parametrize("name", ["val/loss", "train/lr", "train/lr_backbone", "epochs", "acc", "val/accuracy_x"])
def test_other_numbers_keep_their_unit(name: str) -> None:
    assert not in_percent(name)
