"""python -m fer_lightning.serve_bench (conf/serve_bench.yaml):
load on the web server over loopback, as numbers: requests/s, latency percentiles, errors, memory."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.tools.serve_bench import serve_bench

main = entry_point("serve_bench", serve_bench)

if __name__ == "__main__":
    main()
