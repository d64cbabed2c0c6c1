"""What a command prints: the libraries' start-up chatter filtered where it comes from."""

from __future__ import annotations

import logging
import re
import sys
import warnings

# Messages from Lightning and torch that say nothing about this run (each seen at every start, in every sweep job).
# The one list: commands filter them (quiet_library_chatter), and so does the test suite (tests/conftest.py).
CHATTER = (
    "litlogger",  # an advertisement for a cloud service
    "is not supported by the model summary",  # bf16: "model size in MB will not be accurate"
    "does not have many workers",  # a 2-core machine gets 1 worker on purpose (data.num_workers)
    "isinstance(treespec, LeafSpec)",  # Lightning's own use of a torch deprecation
    "GPU available: False",
    "TPU available:",
    "HPU available:",
    "smaller than the logging interval",  # metrics are logged per epoch, not every n steps
    "command is available on your system but is not used",  # srun: a one-device job needs none; SLURM jobs get it
    "Trainer already configured with model summary callbacks",  # in a log file the run adds a plain one on purpose
)


def chatter_patterns() -> list[str]:
    """CHATTER as regular expressions that match a whole warning message holding one of its texts (no ``:``, so
    they also read as the message part of a pytest ``filterwarnings`` line)."""
    return [f".*{re.escape(text).replace(':', '.')}.*" for text in CHATTER]


class DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in CHATTER)


def quiet_library_chatter() -> None:
    """Filter CHATTER out of Lightning's info logs and Python warnings; everything else is left as it is."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.pytorch"):
        logging.getLogger(name).addFilter(DropChatter())
    for pattern in chatter_patterns():
        warnings.filterwarnings("ignore", message=pattern)


def on_terminal() -> bool:
    """True when both stdout and stderr are terminals: progress bars (which redraw with carriage returns) are shown
    only then. Redirected to a file (``> run.log``, nohup, a cluster job, CI), runs log plain lines instead."""
    streams = (sys.stdout, sys.stderr)
    return all(stream is not None and hasattr(stream, "isatty") and stream.isatty() for stream in streams)


def aligned_table(rows: dict[str, str | int | float], digits: int = 4) -> str:
    """``name  value`` lines, names padded to one column, values right-aligned: a short summary that reads well in a
    log. Text (a number already formatted, ``68.68%``) stands as it is."""
    width = max((len(name) for name in rows), default=0)

    def cell(value: str | int | float) -> str:
        return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}" if isinstance(value, float) else value

    return "\n".join(f"  {name:<{width}}  {cell(value):>{digits + 6}}" for name, value in rows.items())
