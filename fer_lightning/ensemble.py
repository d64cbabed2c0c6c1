"""python -m fer_lightning.ensemble (conf/ensemble.yaml): two or more trained checkpoints as one model."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.models.ensemble import write_ensemble

main = entry_point("ensemble", write_ensemble)

if __name__ == "__main__":
    main()
