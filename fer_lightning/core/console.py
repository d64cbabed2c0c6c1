"""What a run prints: the libraries' start-up chatter filtered where it comes from, and a short summary at the end."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

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


def run_summary(metrics: dict[str, float], best: str, run_dir: Path, logdir: str) -> str:
    """The few lines a run ends with: the test numbers, where the best checkpoint and the run are, how to look."""
    lines = []
    if "test/acc" in metrics:
        lines.append(f"Test accuracy {metrics['test/acc']:.2%}, macro F1 {metrics.get('test/f1', float('nan')):.3f} "
                     f"(best val accuracy {metrics.get('val/acc_best', float('nan')):.2%})")
    elif "val/acc_best" in metrics:
        lines.append(f"Best val accuracy {metrics['val/acc_best']:.2%} (no test)")
    lines += [f"Best checkpoint: {best or 'none'}", f"Run folder: {run_dir}", f"TensorBoard: tensorboard --logdir {logdir}"]
    return "\n".join(lines)
