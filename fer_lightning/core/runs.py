"""Where runs and their checkpoints are: ``ckpt_path`` (a file, ``last``, or not given: the released default model)
means the same to train, eval, predict, export and the Python API.

Only paths and the runs' saved .hydra/config.yaml are read here (no checkpoint is opened), so the ``${run_dir:...}``
resolver of conf/hydra/train.yaml stays cheap.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.errors import EXIT_BAD_INPUT, RunFolderInUse
from fer_lightning.core.legacy import current_target, current_targets

# The released default model (fer_lightning/weights/README.md: its card): used when ckpt_path is not given.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "weights" / "fer2013_scratch_best.pt"

log = logging.getLogger(__name__)


def run_checkpoints(root: str | Path) -> Iterator[Path]:
    """Every ``<run>/checkpoints/last.ckpt`` of a training run under ``root`` (runs and sweep jobs)."""
    yield from Path(root).expanduser().glob("train/**/checkpoints/last.ckpt")


def trained_net(run_checkpoint: Path) -> str | None:
    """The net a run trained, from its .hydra/config.yaml (cheap: no checkpoint is opened)."""
    config = run_checkpoint.parent.parent / ".hydra" / "config.yaml"
    try:
        return current_target(yaml.safe_load(config.read_text())["model"]["net"]["_target_"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def saved_net(run_checkpoint: Path) -> object:
    """The ``model.net`` section a run saved in its .hydra/config.yaml, as written (interpolations unresolved)."""
    config = run_checkpoint.parent.parent / ".hydra" / "config.yaml"
    try:
        return current_targets(yaml.safe_load(config.read_text())["model"]["net"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def default_model() -> Path:
    """The released default model, said in one log line, or one line on what to give instead."""
    if not DEFAULT_MODEL.is_file():
        raise FileNotFoundError(
            f"ckpt_path not given and this install has no released default model ({DEFAULT_MODEL}): "
            "give ckpt_path=<file.ckpt> or ckpt_path=last"
        )
    log.info(
        "ckpt_path not given: using the released default model %s (card: %s)",
        DEFAULT_MODEL,
        DEFAULT_MODEL.with_name("README.md"),
    )
    return DEFAULT_MODEL


def find_checkpoint(ckpt_path: str | Path | None, root: str | Path = "outputs", net: str | None = None) -> Path:
    """A checkpoint file; ``last`` is the newest training run's ``checkpoints/last.ckpt`` under ``root``
    (the configured outputs folder), of the same net when ``net`` is given; None is the released default model."""
    if ckpt_path is None:
        return default_model()
    if str(ckpt_path) != "last":
        path = Path(ckpt_path).expanduser()
        if path.is_dir():
            inside = path / "checkpoints" / "last.ckpt"
            hint = f" (its run's last checkpoint is {inside})" if inside.is_file() else ""
            raise IsADirectoryError(f"ckpt_path={ckpt_path} is a directory, not a checkpoint file{hint}")
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
        return path
    found = list(run_checkpoints(root))
    matching = [p for p in found if net is None or trained_net(p) == net]
    if not matching:
        others = "; ".join(f"{p} ({trained_net(p) or 'unknown net'})" for p in sorted(found)[-10:])
        wanted = f" of a {net} model" if net else ""
        raise FileNotFoundError(
            f"ckpt_path=last: no training run{wanted} under {Path(root).resolve()} has "
            f"checkpoints/last.ckpt{'; the others: ' + others if others else ''}"
        )
    return max(matching, key=lambda p: p.stat().st_mtime)


def run_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/<file>`` with ``<run>/.hydra``), else None."""
    run = checkpoint.resolve().parent.parent
    return run if checkpoint.resolve().parent.name == "checkpoints" and (run / ".hydra").is_dir() else None


def run_dir(ckpt_path: str | None, root: str, net: str | DictConfig, fresh: str) -> str:
    """The folder a training run writes to: a resumed checkpoint's own run (same TensorBoard run, same
    checkpoints) when that run trained the same net (``net``: its ``_target_``, or the whole ``model.net`` section,
    then compared with the run's saved one, sizes included), else a fresh one; a checkpoint outside any run folder
    also starts a fresh one. Used as ``${run_dir:...}`` in conf/hydra/train.yaml, while Hydra builds the run folder:
    it never raises (Hydra would bury the message in a page of its own) and never picks a run this one would not
    resume, so a refused resume writes nothing into that run. The task itself (training/resume.py) then says in
    one line what is wrong with ``ckpt_path``."""
    if not ckpt_path:
        return fresh
    target = net.get("_target_") if isinstance(net, DictConfig) else net
    try:
        checkpoint = find_checkpoint(ckpt_path, root, target)
    except (OSError, ValueError):
        return fresh
    run = run_of(checkpoint)
    if run is None or trained_net(checkpoint) != current_target(target):
        return fresh
    if isinstance(net, DictConfig) and saved_net(checkpoint) != current_targets(OmegaConf.to_container(net)):
        return fresh  # the same net with other sizes or settings: refused (check_shapes) or a run of its own
    return str(run)


LOCK_NAME = ".run.lock"
_held: list[IO[str]] = []  # the locks this process holds, open until it ends


def own_run_folder(folder: str | Path) -> None:
    """Take ``folder`` for this process: an exclusive ``flock`` on ``<folder>/.run.lock``, held open for the life of
    the process (the kernel lets go when it ends, however it ends: a killed run leaves no stale lock). A folder that
    another live run holds (the same ``hydra.run.dir``, or a resume of a run still going) is refused."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / LOCK_NAME).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise RunFolderInUse(
            f"run folder {folder} is in use by another run{f' (pid {holder})' if holder else ''}: "
            "wait for it to end, or give another hydra.run.dir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    _held.append(lock)


def launched_rank() -> bool:
    """A process that a launcher started for a rank above 0 (DDP's children rerun the command into rank 0's
    folder, which rank 0 holds)."""
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))


class OwnRunFolder(Callback):
    """Hydra callback (conf/hydra/default.yaml): a single run takes its folder (``own_run_folder``) before Hydra
    writes anything into it, so a run refused here changes nothing in the folder of the run that holds it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if launched_rank():
            return
        HydraConfig.instance().set_config(config)  # ${hydra:...} in run.dir, as run_job resolves it
        folder = Path(str(OmegaConf.select(config, "hydra.run.dir"))).absolute()
        try:
            own_run_folder(folder)
        except RunFolderInUse as error:
            log.error("%s", error)
            sys.exit(EXIT_BAD_INPUT)
