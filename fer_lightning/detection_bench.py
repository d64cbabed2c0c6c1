"""python -m fer_lightning.detection_bench (conf/detection_bench.yaml):
how often predict's face detectors find FER-2013's own test faces."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.tools.detection_bench import detection_bench

main = entry_point("detection_bench", detection_bench)

if __name__ == "__main__":
    main()
