"""What a command prints: Lightning's and torch's start-up chatter filtered, by one list (core/console.py CHATTER)."""

from __future__ import annotations

import logging
import warnings

import pytest

from fer_lightning.core.console import quiet_library_chatter


def test_foreign_chatter_is_filtered_and_everything_else_shown(caplog: pytest.LogCaptureFixture) -> None:
    srun = "The `srun` command is available on your system but is not used. HINT: If your intention is to run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_chatter()
        warnings.warn(srun, UserWarning, stacklevel=1)  # every sweep job, on a machine with SLURM installed
        warnings.warn("isinstance(treespec, LeafSpec) is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("a warning about this run", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning about this run"]
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
        logging.getLogger("lightning.pytorch").info("GPU available: False, used: False")
        logging.getLogger("lightning.pytorch").info("Restoring states from the checkpoint path at x.ckpt")
    assert [r.getMessage() for r in caplog.records] == ["Restoring states from the checkpoint path at x.ckpt"]
