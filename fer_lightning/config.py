"""Where the Hydra configs live, and the custom resolvers they use.

A wheel ships conf/ as fer_lightning/conf; an editable install or a source checkout reads the
repository's top-level conf/. Every entry point imports this module before Hydra composes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fer_lightning.console import quiet_library_chatter
from fer_lightning.hardware import fastest_precision
from fer_lightning.resume import run_dir

_PACKAGE = Path(__file__).resolve().parent


def _config_dir() -> Path:
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no Hydra configs in {_PACKAGE / 'conf'} or {_PACKAGE.parent / 'conf'}: reinstall fer-lightning")


CONFIG_DIR: Path = _config_dir()
quiet_library_chatter()  # every entry point imports this module first
OmegaConf.register_new_resolver("fastest_precision", fastest_precision, replace=True)  # conf/trainer/default.yaml
OmegaConf.register_new_resolver("run_dir", run_dir, replace=True)  # conf/hydra/train.yaml
# ${if_null:a,b}: a unless it is null, then b (the net's input side: data.crop_size, else data.image_size).
OmegaConf.register_new_resolver("if_null", lambda value, fallback: fallback if value is None else value, replace=True)
# ${slurm_gpus:accelerator,devices}: the GPUs per node a SLURM job asks for (conf/hydra/launcher/slurm.yaml): the
# trainer's devices when it trains on GPUs, none otherwise (a CPU job would hold a GPU idle).
OmegaConf.register_new_resolver(
    "slurm_gpus", lambda accelerator, devices: devices if accelerator in ("gpu", "cuda") else None, replace=True)


def check_value(key: str, value: Any, kind: type, low: float, high: float | None = None, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """A config value of the wrong type or range stops the run at once, naming the key (not later, deep in torch)."""
    numeric = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise ValueError(f"{key}={value!r}: expected {'a number' if kind is float else 'an integer'}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        span = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{key}={value!r}: expected a value in {span}")
