"""Where the Hydra configs live, and the custom resolvers they use.

A wheel ships conf/ as fer_lightning/conf; an editable install or a source checkout reads the
repository's top-level conf/. Every entry point imports this module before Hydra composes.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from fer_lightning.core.console import on_terminal, quiet_library_chatter
from fer_lightning.core.hardware import fastest_precision
from fer_lightning.core.overrides import folder_name, sweep_keys
from fer_lightning.core.runs import run_dir

_PACKAGE = Path(__file__).resolve().parent.parent  # fer_lightning/


def _config_dir() -> Path:
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"no Hydra configs in {_PACKAGE / 'conf'} or {_PACKAGE.parent / 'conf'}: reinstall fer-lightning"
    )


CONFIG_DIR: Path = _config_dir()
quiet_library_chatter()  # every entry point imports this module first
OmegaConf.register_new_resolver("fastest_precision", fastest_precision, replace=True)  # conf/trainer/default.yaml
# ${on_terminal:}: progress bars only where stdout and stderr are terminals (conf/trainer/default.yaml, predict.yaml).
OmegaConf.register_new_resolver("on_terminal", on_terminal, replace=True)
OmegaConf.register_new_resolver("run_dir", run_dir, replace=True)  # conf/hydra/train.yaml
# ${folder_name:prefix,overrides[,keys]} and ${sweep_keys:dir,params}: run and sweep-job folders (and so TensorBoard's
# run names) say what the run changed: outputs/train/multiruns/<time>/0_lr-0.001_batch_size-64 (conf/hydra/).
OmegaConf.register_new_resolver("folder_name", folder_name, replace=True)
OmegaConf.register_new_resolver("sweep_keys", lambda folder, params: sorted(sweep_keys(folder, params)), replace=True)
# ${if_null:a,b}: a unless it is null, then b (the net's input side: data.crop_size, else data.image_size).
OmegaConf.register_new_resolver("if_null", lambda value, fallback: fallback if value is None else value, replace=True)
# ${if_else:flag,a,b}: a when flag is true, else b (conf/model_common/transfer.yaml: what pretrained=false changes).
OmegaConf.register_new_resolver("if_else", lambda flag, then, otherwise: then if flag else otherwise, replace=True)
# ${slurm_gpus:accelerator,devices}: the GPUs per node a SLURM job asks for (conf/hydra/launcher/slurm.yaml): the
# trainer's devices when it trains on GPUs, none otherwise (a CPU job would hold a GPU idle).
OmegaConf.register_new_resolver(
    "slurm_gpus", lambda accelerator, devices: devices if accelerator in ("gpu", "cuda") else None, replace=True
)
