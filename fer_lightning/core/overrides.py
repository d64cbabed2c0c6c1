"""Hydra command-line overrides, read one way everywhere: ``[+|++|~]key[=value]`` (a key, or a group such as
``model/optimizer``). Training names its TensorBoard runs and HPARAMS knobs by them, the leaderboard shows them, the
benches forward them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import yaml
from omegaconf import OmegaConf

# Keys that say where things are (folders, data, the checkpoint to resume), not what was trained.
LOCATION_KEYS = ("hydra", "paths.", "data.root", "data.cache_dir", "ckpt_path")


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


def sweep_keys(sweep_dir: str | Path, sweeper_params: Mapping | None) -> set[str]:
    """The keys a sweep varies, as a job of it can tell: those its command line gives several values (saved in
    ``<sweep dir>/multirun.yaml`` before the first job, by Hydra's basic sweeper and by the leaderboard callback for
    any sweeper) and those of ``hydra.sweeper.params`` (a search space: Optuna's, or the basic sweeper's own)."""
    keys = {parse_override(str(key)).key for key in sweeper_params or {}}
    saved = Path(sweep_dir) / "multirun.yaml"
    if saved.is_file():
        task = (yaml.safe_load(saved.read_text()) or {}).get("hydra", {}).get("overrides", {}).get("task") or []
        keys |= swept_keys(task)
    return keys


# A run folder's label stops at whole key=value parts within this many characters (a name may hold 255 bytes; the
# job number or time before it keeps names apart); "+<n>" then says how many were left out.
LABEL_CHARS = 100


def short_value(value: str) -> str:
    """A number in at most 4 significant digits (0.00012709381746 -> 0.0001271, 1e-3 -> 0.001); other text as is."""
    try:
        int(value)
        return value
    except ValueError:
        pass
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def folder_name(prefix: str | int, overrides: Iterable[str], keys: Iterable[str] | None = None) -> str:
    """``<prefix>_lr-0.001_batch_size-64``: a run folder (and so its TensorBoard run) named by the overrides that
    tell it apart: those of ``keys`` (a sweep's swept keys; none: the prefix alone), or when ``keys`` is None every
    one that is not a location. Keys by their last part, numbers short. Only letters, digits and ``_ . + -``: a path
    the project prints pastes back unquoted into ``ckpt_path=``, ``runs=[...]`` or ``sweep_dir=`` (Hydra's override
    grammar reads ``=`` and ``,`` as syntax). Used while Hydra builds the folder: overrides are read as typed, never
    resolved."""
    if OmegaConf.is_config(overrides):
        overrides = OmegaConf.to_container(overrides, resolve=False)
    parsed = [o for o in map(parse_override, overrides) if o.value is not None and not is_location(o.key)]
    if keys is not None:
        chosen = set(keys)
        parsed = [o for o in parsed if o.key in chosen]
    parts = [
        re.sub(r"[^\w.+-]", "-", f"{re.split(r'[./]', o.key)[-1]}-{short_value(o.value.strip('[]'))}") for o in parsed
    ]
    label = ""
    for index, part in enumerate(parts):
        if len(label) + len(part) + 1 > LABEL_CHARS:
            label += f"_+{len(parts) - index}"
            break
        label += ("_" if label else "") + part
    return f"{prefix}_{label}" if label else str(prefix)


def job_number(folder: str) -> int | str:
    """A sweep job's number from its folder's name (``3_lr-0.001`` -> 3); other names as they are."""
    head = folder.split("_", 1)[0]
    return int(head) if head.isdigit() else folder
