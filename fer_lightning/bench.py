"""python -m fer_lightning.bench (conf/bench.yaml):
the numbers behind the README's speed claims, measured in one run."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.tools.bench import bench

main = entry_point("bench", bench)

if __name__ == "__main__":
    main()
