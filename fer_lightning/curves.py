"""python -m fer_lightning.curves (conf/curves.yaml):
training runs' val curves on the same axes, per epoch and per minute."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.tools.curves import curves

main = entry_point("curves", curves)

if __name__ == "__main__":
    main()
