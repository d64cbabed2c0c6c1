"""python -m fer_lightning.eval (conf/eval.yaml):
a checkpoint's report on one split, from the checkpoint alone."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.evaluation.evaluate import evaluate

main = entry_point("eval", evaluate)

if __name__ == "__main__":
    main()
