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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.errors import EXIT_BAD_INPUT, RunFolderInUse, UserInputError, report
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
SWEEP_LOCK_NAME = ".sweep.lock"
_held: list[IO[str]] = []  # the locks this process holds, open until it ends


def own_run_folder(
    folder: str | Path,
    lock_name: str = LOCK_NAME,
    what: str = "run folder",
    refuse: Callable[[], str | None] | None = None,
) -> None:
    """Take ``folder`` for this process: an exclusive ``flock`` on ``<folder>/.run.lock``, held open for the life of
    the process (the kernel lets go when it ends, however it ends: a killed run leaves no stale lock). A folder that
    another live run holds (the same ``hydra.run.dir``, or a resume of a run still going) is refused. A sweep folder
    (``hydra.sweep.dir``) is taken the same way, with ``.sweep.lock``. ``refuse``, asked once the lock is held: why
    this process may not use the folder after all (then it lets go, and the folder is as it was)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lock_name
    created = not path.exists()
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        other, setting = ("run", "hydra.run.dir") if lock_name == LOCK_NAME else ("sweep", "hydra.sweep.dir")
        raise RunFolderInUse(
            f"{what} {folder} is in use by another {other}{f' (pid {holder})' if holder else ''}: "
            f"wait for it to end, or give another {setting}"
        ) from None
    reason = refuse() if refuse is not None else None
    if reason:
        if created:
            path.unlink(missing_ok=True)
        lock.close()
        raise UserInputError(reason)
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    _held.append(lock)


def launched_rank() -> bool:
    """A process that a launcher started for a rank above 0 (DDP's children rerun the command into rank 0's
    folder, which rank 0 holds)."""
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))


def requeued() -> bool:
    """A SLURM job started again after a requeue: it goes on in its own folder (training/resume.py)."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def run_files(folder: Path) -> list[str]:
    """What a run wrote into ``folder`` besides Hydra's own files (.hydra/, the log) and the run lock."""
    return sorted(p.name for p in folder.iterdir() if p.name not in (".hydra", LOCK_NAME) and p.suffix != ".log")


def earlier_run(folder: Path, config: DictConfig) -> str | None:
    """Why a fresh training run may not write into ``folder``: an earlier run wrote its files there (Hydra's .hydra/
    and log, and more: checkpoints, events, reports), and both runs' files would mix. A resume (``ckpt_path``) goes on
    in its run's folder, and so does a requeued SLURM job; None then, and for a folder no run has used or whose run
    was refused before it wrote anything but Hydra's own files."""
    if not (folder / ".hydra").is_dir() or OmegaConf.select(config, "ckpt_path") or requeued():
        return None
    written = run_files(folder)
    if not written:
        return None
    return (
        f"run folder {folder} holds an earlier run ({', '.join(written[:4])}{', ...' if len(written) > 4 else ''}): "
        "a fresh run would mix its files with that run's; give another hydra.run.dir, or ckpt_path=<its checkpoint> "
        "to resume it"
    )


class OwnRunFolder(Callback):
    """Hydra callback (conf/hydra/train.yaml): a single run takes its folder (``own_run_folder``) before Hydra
    writes anything into it, so a run refused here changes nothing in the folder of the run that holds it; and a
    fresh run never writes into a folder an earlier run used (``earlier_run``)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if launched_rank():
            return
        HydraConfig.instance().set_config(config)  # ${hydra:...} in run.dir, as run_job resolves it
        folder = Path(str(OmegaConf.select(config, "hydra.run.dir"))).absolute()
        try:
            own_run_folder(folder, refuse=lambda: earlier_run(folder, config))
        except UserInputError as error:
            report(str(error))
            sys.exit(EXIT_BAD_INPUT)


class OwnSweepFolder(Callback):
    """Hydra callback (conf/hydra/default.yaml): a sweep takes its folder (``hydra.sweep.dir``, ``.sweep.lock``) before
    its first job, for as long as the sweep runs; a second sweep into it is refused in one line while the first is live,
    and so is a sweep into a folder that holds an earlier sweep's jobs: the jobs of two sweeps share numbers, and the
    leaderboard (tools/leaderboard.py) would rank both together and count the other's running jobs as failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        folder = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))).absolute()
        try:
            own_run_folder(folder, SWEEP_LOCK_NAME, "sweep folder", refuse=lambda: earlier_sweep(folder))
        except UserInputError as error:
            report(str(error))
            sys.exit(EXIT_BAD_INPUT)


def earlier_sweep(folder: Path) -> str | None:
    """Why a sweep may not write into ``folder``: it holds the job folders (``<job>/.hydra/``) of an earlier sweep."""
    jobs = sorted(p.name for p in folder.iterdir() if (p / ".hydra").is_dir())
    if not jobs:
        return None
    return (
        f"sweep folder {folder} holds the jobs of an earlier sweep "
        f"({', '.join(jobs[:5])}{', ...' if len(jobs) > 5 else ''}): the two sweeps' jobs would share numbers "
        "and one leaderboard; give another hydra.sweep.dir (by default each sweep gets a new folder)"
    )
