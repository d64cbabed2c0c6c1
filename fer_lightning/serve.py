"""python -m fer_lightning.serve (conf/serve.yaml):
a web page and an HTTP API for the emotions of the faces in uploaded photos."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.serving.server import serve

main = entry_point("serve", serve)

if __name__ == "__main__":
    main()
