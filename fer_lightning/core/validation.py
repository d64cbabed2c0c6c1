"""Config values checked where they enter (a constructor a config builds): a bad value stops the run at once,
naming its key, not later and deep in torch. Functions below those constructors take the values as checked."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def check_value(
    key: str,
    value: Any,
    kind: type,
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A number of the right type (``int``, or ``float`` taking ints too) in [low, high] (or open at either end)."""
    numeric = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise ValueError(f"{key}={value!r}: expected {'a number' if kind is float else 'an integer'}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        right = ")" if high_open or high is None else "]"
        span = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{key}={value!r}: expected a value in {span}")


def check_choice(key: str, value: Any, choices: Collection[str]) -> None:
    """One of ``choices``."""
    if value not in choices:
        raise ValueError(f"{key}={value!r}: expected {' or '.join(choices)}")
