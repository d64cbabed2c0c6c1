"""python -m fer_lightning.train (conf/train.yaml):
fit, test the best checkpoint (chosen on val), write the run's reports."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.training.run import train_job

main = entry_point("train", train_job)

if __name__ == "__main__":
    main()
