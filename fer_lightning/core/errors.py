"""One error style for bad input, in every command: one line naming the thing and what was expected, exit status 2;
the traceback only with ``HYDRA_FULL_ERROR=1``.

The project says what is wrong with a config value, a file or a checkpoint by raising ``ValueError`` (core/validation,
core/checkpoints), ``FileNotFoundError`` / ``IsADirectoryError`` / ``NotADirectoryError`` (core/runs, data/readers)
or its own ``UserInputError``, each with a message that is already the one line to show. ``user_errors`` wraps an
entry point's main (under ``@hydra.main``) and turns those into that line and ``sys.exit(2)``; Hydra's own handler
would print its wrapping and exit 1. Hydra's ``InstantiationException`` ("Error in call to target ...") is unwrapped
to the error the constructor raised. In a multirun job the error is raised as it is: the sweep records the failed
job (training/run.py's train_job, tools/leaderboard.py) and goes on.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("fer_lightning")

EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])


class UserInputError(ValueError):
    """Bad input the user can fix (a value, a file, a folder), said in one line; exit status 2 from a command."""


class RunFolderInUse(UserInputError):
    """The run folder is owned by another live run (core/runs.py's lock)."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # config values (core/validation.py), unreadable checkpoints and files, refused resumes
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
)


def user_error(error: BaseException) -> BaseException | None:
    """The user-input error behind ``error`` (itself, or the cause Hydra's instantiate wrapped), else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, USER_ERRORS) or type(error).__name__ == "CheckpointWriteError":
            return error
        if type(error).__name__ != "InstantiationException":
            return None
        error = error.__cause__ or error.__context__
    return None


def one_line(error: BaseException) -> str:
    """The error's message on one line (its first; a FileNotFoundError from the OS with its file name)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
            if found is None or in_multirun() or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.error("%s", one_line(found))
            sys.exit(EXIT_BAD_INPUT)

    return wrapped  # type: ignore[return-value]
