"""python -m fer_lightning.analyze (conf/analyze.yaml):
what is in the data and what cleaning found, as files and in TensorBoard."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.data.analysis import analyze

main = entry_point("analyze", analyze)

if __name__ == "__main__":
    main()
