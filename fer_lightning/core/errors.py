"""One error style for bad input, in every command: one line naming the thing and what was expected, exit status 2;
the traceback only with ``HYDRA_FULL_ERROR=1``.

The project says what is wrong with a config value, a file or a checkpoint by raising ``ValueError`` (core/validation,
core/checkpoints), ``FileNotFoundError`` / ``IsADirectoryError`` / ``NotADirectoryError`` (core/runs, data/readers)
or its own ``UserInputError``, each with a message that is already the one line to show. ``user_errors`` wraps an
entry point's main (under ``@hydra.main``) and turns those into that line and ``sys.exit(2)``; Hydra's own handler
would print its wrapping and exit 1. Hydra's ``InstantiationException`` ("Error in call to target ...") is unwrapped
to the error the constructor raised. In a multirun job the error is raised as it is: the sweep records the failed
job (training/run.py's train_job, tools/leaderboard.py) and goes on.

Config errors are said the same way (``config_error_line``): an override of a key that does not exist names the key and
the closest ones that do, an option a group does not have names the group's options, an override Hydra cannot parse is
quoted, a mandatory value left out (``???``) or an interpolation that does not resolve names its key. core/entry.py
applies this to what Hydra raises while it composes, before any command runs.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)
from omegaconf import Container
from omegaconf.errors import (
    GrammarParseError,
    InterpolationResolutionError,
    InterpolationToMissingValueError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

log = logging.getLogger("fer_lightning")

EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])


class UserInputError(ValueError):
    """Bad input the user can fix (a value, a file, a folder), said in one line; exit status 2 from a command."""


class WeightsUnavailable(UserInputError, RuntimeError):
    """Pretrained weights that could not be had (offline, no cached file): the user puts the file in place, or says
    where it is; a RuntimeError too, as torchvision's own download failures are."""


class RunFolderInUse(UserInputError):
    """The run folder is owned by another live run (core/runs.py's lock)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a quota): the files already there are whole (core/checkpoints.py
    AtomicCheckpointIO). Said in one line like bad input: the user frees space and resumes."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # config values (core/validation.py), unreadable checkpoints and files, refused resumes
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    CheckpointWriteError,
)


# What a config can be wrong with, wherever it is found: Hydra's composition (an override, an option, the override
# grammar), a mandatory value not given, an interpolation that does not resolve.
CONFIG_ERRORS: tuple[type[BaseException], ...] = (
    ConfigCompositionException,  # MissingConfigException too
    OverrideParseException,
    SearchPathException,
    MissingMandatoryValue,
    InterpolationResolutionError,
    GrammarParseError,
)


def user_error(error: BaseException) -> BaseException | None:
    """The user-input error behind ``error`` (itself, or the cause Hydra's instantiate wrapped), else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, USER_ERRORS + CONFIG_ERRORS):
            return error
        if not isinstance(error, InstantiationException):
            return None
        error = error.__cause__ or error.__context__
    return None


def one_line(error: BaseException) -> str:
    """The error's message on one line (its first; a FileNotFoundError from the OS with its file name; a config error
    as ``config_error_line`` says it)."""
    if isinstance(error, CONFIG_ERRORS + (OmegaConfBaseException,)):
        return config_error_line(error)
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def close_names(name: str, names: Sequence[str], prefix: str = "", listing: str | None = None) -> str:
    """The hint after a name that is not among ``names``: ' (did you mean <prefix>a or <prefix>b?)', or when none
    is close '; <listing>: <the names>' (at most 20; ``listing`` defaults to '<prefix> has')."""
    names = [str(n) for n in names if not str(n).startswith("_")]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.75)
    if close:
        return f" (did you mean {' or '.join(prefix + c for c in close)}?)"
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    listing = listing or f"{prefix.rstrip('.') or 'the config'} has"
    return f"; {listing}: {shown}" if names else ""


def bad_override(arguments: Sequence[str]) -> str | None:
    """The first command-line argument Hydra's override grammar does not parse, else None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for argument in arguments:
        if argument.startswith("-") or ("=" not in argument and not argument.startswith("~")):
            continue  # Hydra's own flags (-m, --cfg job, -cn name ...) and their values are not overrides
        try:
            parser.parse_override(argument)
        except Exception:
            return argument
    return None


def config_error_line(error: BaseException, arguments: Sequence[str] | None = None) -> str:
    """A config error in one line that names the key, the option or the override, and what there is instead:
    ``model.lrr: no such key (did you mean model.lr?)``, ``model=vgg19: model has no option vgg19; its options:
    cnn, resnet50, vgg16``. ``arguments``: the command line, to quote an override Hydra cannot parse."""
    text = str(error).strip()
    lines = [line.strip() for line in text.split("Config search path")[0].splitlines() if line.strip()]
    cause = error.__cause__
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options is not None:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        if group:
            return f"{group}={option}: {group} has no option {option}; its options: {', '.join(error.options)}"
    if isinstance(error, ConfigCompositionException) and isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        parent = getattr(cause, "parent_node", None)
        if key and text.startswith("Could not override"):
            name = str(key).rsplit(".", 1)[-1]
            siblings = list(parent.keys()) if isinstance(parent, Container) and hasattr(parent, "keys") else []
            prefix = str(key)[: -len(name)]
            return f"{key}: no such key{close_names(name, siblings, prefix)}"
    if isinstance(error, OverrideParseException):
        found = bad_override(sys.argv[1:] if arguments is None else arguments)
        reason = lines[0] if lines else "not an override"
        if found:
            return f"{found}: not an override Hydra can parse ({reason}); quote a value holding = , [ ] or spaces"
        return f"not an override Hydra can parse: {reason}"
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        if isinstance(error, MissingMandatoryValue) and key:
            return not_given(key)
        missing = MISSING_IN_INTERPOLATION.search(text)
        if isinstance(error, InterpolationToMissingValueError) and missing:  # hydra.run.dir: ${sweep_dir}
            return not_given(missing.group(1))
        first = lines[0] if lines else type(error).__name__
        return f"{key}: {first}" if key and not first.startswith(str(key)) else first
    return "; ".join(lines) if lines else type(error).__name__


MISSING_IN_INTERPOLATION = re.compile(r"Missing mandatory value: ([\w.\[\]-]+)")


def not_given(key: str) -> str:
    """The line for a mandatory key (``???``) left out: the key, and how to give it."""
    return f"{key} is not given (??? in the config): add {key}=<value> to the command line"


def full_error() -> bool:
    """``HYDRA_FULL_ERROR=1``: every error with its traceback, as Hydra gives it."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


LINE_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's own: as a command's log lines look


def report(line: str) -> None:
    """One error line on stderr, as a command's log lines look, where Hydra's own logging is not (yet) a job's: while
    it composes the config, in its callbacks, after a sweep."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False  # once, whatever handlers Hydra set up
    try:
        log.error("%s", line)
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # no Hydra context (the Python API): not a sweep
        return False


def user_errors(main: F) -> F:
    """An entry point's main with bad input said in one line and exit status 2 (see the module's docstring)."""

    @functools.wraps(main)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except Exception as error:
            found = user_error(error)
            if found is None or in_multirun() or full_error():
                raise
            log.error("%s", one_line(found))
            sys.exit(EXIT_BAD_INPUT)

    return wrapped  # type: ignore[return-value]
