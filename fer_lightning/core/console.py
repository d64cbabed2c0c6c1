"""What a command prints: the libraries' start-up chatter filtered where it comes from."""

from __future__ import annotations

import logging
import warnings

# Messages from Lightning and torch that say nothing about this run (each seen at every start).
CHATTER = (
    "litlogger",  # an advertisement for a cloud service
    "is not supported by the model summary",  # bf16: "model size in MB will not be accurate"
    "does not have many workers",  # a 2-core machine gets 1 worker on purpose (data.num_workers)
    "isinstance(treespec, LeafSpec)",  # Lightning's own use of a torch deprecation
    "GPU available: False",
    "TPU available:",
    "HPU available:",
    "smaller than the logging interval",  # metrics are logged per epoch, not every n steps
)


class DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in CHATTER)


def quiet_library_chatter() -> None:
    """Filter CHATTER out of Lightning's info logs and Python warnings; everything else is left as it is."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", "lightning.pytorch"):
        logging.getLogger(name).addFilter(DropChatter())
    for text in CHATTER:
        warnings.filterwarnings("ignore", message=f".*{text.replace('(', r'[(]').replace(')', r'[)]')}.*")
