"""Files a run leaves behind are written whole or not at all: to a temporary name, then renamed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` fills a temporary file beside ``path``; a rename then makes it appear at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> None:
    write_atomically(path, lambda tmp: table.to_csv(tmp, index=index))


def write_json(content: dict, path: Path) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(content, indent=2, sort_keys=True)))
