"""python -m fer_lightning.leaderboard (conf/leaderboard.yaml):
one table for a sweep (also written when a multirun ends)."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.tools.leaderboard import rank

main = entry_point("leaderboard", rank)

if __name__ == "__main__":
    main()
