"""The unit of each number a run reports. Accuracy, precision, recall and F1 are fractions where programs read them
(metrics.json, the CSVs, TensorBoard's curves: torchmetrics' scale) and percent wherever a person reads a table or a
line: the console, the leaderboard, TensorBoard's HPARAMS table."""

from __future__ import annotations

PERCENT_METRICS = ("acc", "precision", "recall", "f1")  # the first word of a metric's name after its stage


def in_percent(name: str) -> bool:
    """``val/acc_best``, ``test/f1_happy``: a fraction, shown in percent; ``val/loss``, ``train/lr``: shown as it is."""
    stage, slash, metric = name.rpartition("/")
    return bool(slash) and metric.split("_")[0] in PERCENT_METRICS
