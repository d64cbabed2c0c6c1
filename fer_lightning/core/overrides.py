"""Hydra command-line overrides, read one way everywhere: ``[+|++|~]key[=value]`` (a key, or a group such as
``model/optimizer``). Training names its TensorBoard runs and HPARAMS knobs by them, the leaderboard shows them, the
benches forward them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

# Keys that say where things are (folders, data, the checkpoint to resume), not what was trained.
LOCATION_KEYS = ("hydra", "paths.", "data.root", "ckpt_path")


class Override(NamedTuple):
    prefix: str  # "", "+", "++" or "~"
    key: str  # model.lr, or a group: model/optimizer
    value: str | None  # None: no "=" (``~key``)

    def __str__(self) -> str:
        return self.prefix + self.key + ("" if self.value is None else f"={self.value}")


def parse_override(text: str) -> Override:
    """'+model.lr=1e-3' -> Override('+', 'model.lr', '1e-3')."""
    key, equals, value = text.partition("=")
    name = key.lstrip("+~")
    return Override(key[: len(key) - len(name)], name, value if equals else None)


def override_keys(overrides: Iterable[str]) -> set[str]:
    """The keys (and groups) the overrides give a value to."""
    return {parsed.key for parsed in map(parse_override, overrides) if parsed.value is not None}


def is_location(key: str) -> bool:
    """Whether an override key says where things are (LOCATION_KEYS) rather than what was trained."""
    return key.startswith(LOCATION_KEYS)


def swept_keys(arguments: Iterable[str]) -> set[str]:
    """The keys a command line gives several values (``-m model.lr=1e-3,3e-4``); empty when it does not parse as
    Hydra's grammar (then a caller falls back to every override)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in arguments if "=" in a and not a.startswith("-")])
    except Exception:  # noqa: BLE001 - anything Hydra's parser rejects: not a sweep it could have started
        return set()
    return {o.key_or_group for o in parsed if o.is_sweep_override()}
