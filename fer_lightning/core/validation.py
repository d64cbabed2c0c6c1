"""Config values checked where they enter (a constructor a config builds): a bad value stops the run at once,
naming its key, not later and deep in torch. Functions below those constructors take the values as checked."""

from __future__ import annotations

import inspect
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


def target_parameters(target: str) -> list[str] | None:
    """The keyword arguments ``target`` (a ``_target_``) takes, or None when that cannot be told: a target that does
    not import (instantiate says so), one with ``**kwargs``, one without a signature Python can read."""
    from hydra.utils import get_object

    try:
        parameters = inspect.signature(get_object(target)).parameters.values()
    except Exception:
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_arguments(config: Any, key: str = "") -> None:
    """Every section of ``config`` (a plain container: ``OmegaConf.to_container(cfg, resolve=False)``) with a
    ``_target_`` holds only keys its target takes, so an added key (``+model.lrr=0.1``) or one a recipe sets for
    another model (``model.net.block_dropout`` on vgg16) is named with the closest it takes, before anything is built
    (the constructor's TypeError names neither the key nor the section)."""
    from fer_lightning.core.errors import close_names

    if isinstance(config, list):
        for index, item in enumerate(config):
            check_arguments(item, f"{key}[{index}]")
        return
    if not isinstance(config, dict):
        return
    target = config.get("_target_")
    takes = target_parameters(target) if isinstance(target, str) and "${" not in target else None
    for name, value in config.items():
        path = f"{key}.{name}" if key else str(name)
        if takes is not None and not str(name).startswith("_") and name not in takes:
            hint = close_names(str(name), takes, f"{key}." if key else "", "it takes")
            raise ValueError(f"{path}: {target} takes no argument {name}{hint}")
        check_arguments(value, path)
