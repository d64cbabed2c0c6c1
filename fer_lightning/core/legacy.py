"""Checkpoints written before the package moved into subpackages: their stored configs name the old import paths.

A stored config is upgraded when it is read (core/checkpoints.py), before the trusted-targets check, which then sees
only the current names. Strings are rewritten, nothing is imported: an old path that names no known module stays as
it is and is refused like any other unknown target.
"""

from __future__ import annotations

from typing import Any

# Old module -> its module now (fer_lightning/<module>.py moved into a subpackage).
MOVED_MODULES: dict[str, str] = {
    "fer_lightning.classifier": "fer_lightning.models.classifier",
    "fer_lightning.schedules": "fer_lightning.models.schedules",
    "fer_lightning.callbacks": "fer_lightning.training.callbacks",
    "fer_lightning.checkpoints": "fer_lightning.core.checkpoints",
    "fer_lightning.detectors": "fer_lightning.serving.detectors",
    "fer_lightning.landmarks": "fer_lightning.serving.landmarks",
    "fer_lightning.bench": "fer_lightning.tools.bench",
}

# Names that left their module's successor: old dotted name -> the name now.
MOVED_NAMES: dict[str, str] = {
    "fer_lightning.callbacks.WriteLeaderboard": "fer_lightning.training.leaderboard.WriteLeaderboard",
    "fer_lightning.tools.leaderboard.WriteLeaderboard": "fer_lightning.training.leaderboard.WriteLeaderboard",
}


def current_target(target: Any) -> Any:
    """``fer_lightning.classifier.EmotionClassifier`` -> ``fer_lightning.models.classifier.EmotionClassifier``;
    anything else unchanged."""
    if not isinstance(target, str):
        return target
    if target in MOVED_NAMES:
        return MOVED_NAMES[target]
    module, _, name = target.rpartition(".")
    return f"{MOVED_MODULES[module]}.{name}" if module in MOVED_MODULES else target


# Keys a constructor no longer takes: dotted key in a stored config -> why it went.
DROPPED_KEYS: dict[str, str] = {
    "data.seed": "FERDataModule(seed=) was never read: augmentation is seeded from the run's seed (seed_everything)",
}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config (plain dicts and lists) as this version builds it: every ``_target_`` under its current name,
    the keys in DROPPED_KEYS left out."""
    upgraded = current_targets(config)
    for dotted in DROPPED_KEYS:
        *parents, key = dotted.split(".")
        node = upgraded
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(key, None)
    return upgraded


def current_targets(node: Any) -> Any:
    """A nested dict/list with every ``_target_`` under its current name."""
    if isinstance(node, dict):
        return {
            key: current_target(value) if key == "_target_" else current_targets(value) for key, value in node.items()
        }
    if isinstance(node, list):
        return [current_targets(value) for value in node]
    return node
