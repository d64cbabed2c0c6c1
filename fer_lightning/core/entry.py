"""Every command's ``main``: ``main = entry_point("train", train_job)`` in fer_lightning/train.py, and so for each.

What it adds to ``@hydra.main``: bad input in one line with exit status 2 (core/errors.py), including what Hydra finds
wrong while it composes the config, before the command runs: an override of a key that does not exist, an option a
group does not have, an override it cannot parse (Hydra itself would print its own page and exit 1). Before the command
runs, every ``_target_`` section of the config is checked for keys its target does not take (``+model.lrr=0.1``), so
that is one line too, not a TypeError from deep inside a constructor; so is a mandatory key (``???``) left out.
``HYDRA_FULL_ERROR=1`` gives the traceback.

A single run refused for bad input takes back the run folder Hydra made for it, when nothing but Hydra's .hydra/ and
the log is in it (``RunFolder``): outputs/ keeps the runs that did something. A folder that was there before (a resumed
run's, one given again as hydra.run.dir), a sweep's jobs (the sweep records its failed ones) and a folder holding
anything else are never touched.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.core.errors import (
    EXIT_BAD_INPUT,
    UserInputError,
    full_error,
    in_multirun,
    not_given,
    one_line,
    report,
    user_error,
    user_errors,
)
from fer_lightning.core.runs import run_files
from fer_lightning.core.validation import check_arguments


def entry_point(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """The ``main`` of ``python -m fer_lightning.<config_name>`` (conf/<config_name>.yaml): ``task`` on the composed
    config, returning what it returns (a sweeper reads train's metric)."""

    def job(cfg: DictConfig) -> Any:
        if not in_multirun():  # a sweep's job fails on its own and the sweep records it (training/run.py)
            arguments = OmegaConf.to_container(cfg, resolve=False)
            missing = next(missing_keys(arguments), None)
            if missing:  # said before any work, wherever the task would first read it
                raise UserInputError(not_given(missing))
            check_arguments(arguments)
        return task(cfg)

    # Hydra names the job after the module of the function it is given: hydra.job.name, the run's <name>.log.
    job.__module__, job.__name__, job.__qualname__ = f"fer_lightning.{config_name}", "main", "main"
    job.__doc__ = task.__doc__
    hydra_main = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(user_errors(job))

    def main() -> Any:
        RunFolder.made = []
        try:
            with config_errors_in_one_line():
                return hydra_main()
        except SystemExit as done:
            if done.code == EXIT_BAD_INPUT:
                take_back_run_folder()
            raise
        finally:
            RunFolder.made = []

    main.__doc__ = f"python -m fer_lightning.{config_name} (conf/{config_name}.yaml)"
    return main


@contextmanager
def config_errors_in_one_line() -> Iterator[None]:
    """Hydra's own error report (``hydra._internal.utils.run_and_report``, around composing the config and around the
    run) with bad input said in one line and exit status 2; anything else (a bug's traceback) as Hydra reports it."""
    from hydra._internal import utils as hydra_utils

    original = getattr(hydra_utils, "run_and_report", None)
    if original is None:  # another Hydra: its own report
        yield
        return

    def run_and_report(func: Callable[[], Any]) -> Any:
        return original(lambda: one_line_on_bad_input(func))

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original


def one_line_on_bad_input(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except Exception as error:
        found = user_error(error)
        if found is None or full_error():
            raise
        report(one_line(found))
        sys.exit(EXIT_BAD_INPUT)


def missing_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """The keys left ``???`` in a config (as ``OmegaConf.to_container(resolve=False)`` gives it), in order."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}" if prefix else str(key)
        if value == "???":
            yield name
        else:
            yield from missing_keys(value, name)


class RunFolder(Callback):
    """Hydra callback (conf/hydra/default.yaml): notes the folder a single run is about to make (``hydra.run.dir``,
    where it does not exist yet: on_run_start comes before Hydra makes it), for ``take_back_run_folder``."""

    made: ClassVar[list[Path]] = []  # [the run folder, the topmost folder made for it], while a main runs

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        RunFolder.made = []
        HydraConfig.instance().set_config(config)  # ${hydra:...} in run.dir, as run_job resolves it
        try:
            folder = Path(str(OmegaConf.select(config, "hydra.run.dir"))).absolute()
        except Exception:  # a mandatory value in it left out: Hydra says so in one line, before making anything
            return
        if folder.exists():  # a resumed run's, a DDP rank's, one given again: never taken back
            return
        top = folder
        while not top.parent.exists():
            top = top.parent
        RunFolder.made = [folder, top]


def close_log_files_in(folder: Path) -> None:
    """Detach the logging handlers writing into ``folder`` (Hydra's job log): a later log line in this process (the
    Python API, a test) must not reopen a file in a removed folder."""
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).is_relative_to(folder):
                handler.close()
                logger.removeHandler(handler)


def take_back_run_folder() -> None:
    """Remove the run folder this run made (``RunFolder``) when nothing but Hydra's .hydra/ and the log (and the run
    lock) is in it, then the folders made for it (outputs/<task>/runs/) while they are empty."""
    if not RunFolder.made:
        return
    folder, top = RunFolder.made
    if not folder.is_dir() or run_files(folder):
        return
    close_log_files_in(folder)
    shutil.rmtree(folder, ignore_errors=True)
    while folder != top:
        folder = folder.parent
        try:
            folder.rmdir()
        except OSError:  # not empty: another run's folders are in it
            return
