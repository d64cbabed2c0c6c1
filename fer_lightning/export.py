"""python -m fer_lightning.export (conf/export.yaml):
a self-contained model file for serving (ONNX, TorchScript) or the compact checkpoint."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.serving.export import export

main = entry_point("export", export)

if __name__ == "__main__":
    main()
