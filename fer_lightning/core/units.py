"""The unit of each number a run reports. Accuracy, precision, recall and F1 are fractions where programs read them
(metrics.json, the CSVs, TensorBoard's curves, checkpoint names: torchmetrics' scale) and percent wherever a person
reads a line or a table: the console, the leaderboard, TensorBoard's HPARAMS table."""

from __future__ import annotations

PERCENT_METRICS = ("acc", "precision", "recall", "f1")  # the first word of a metric's name (after its stage)


def in_percent(name: str) -> bool:
    """``val/acc_best``, ``test/f1_happy``, ``f1``: a fraction, shown in percent; ``val/loss``, ``train/lr``,
    ``ece``: shown as it is."""
    return name.rpartition("/")[2].split("_")[0] in PERCENT_METRICS


def shown(name: str, value: float) -> str:
    """One number as a person reads it: ``59.84%`` for a fraction, four significant digits otherwise."""
    return f"{100 * value:.2f}%" if in_percent(name) else f"{value:.4g}"
