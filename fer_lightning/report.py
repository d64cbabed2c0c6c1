"""python -m fer_lightning.report <sweep folder> [--rank-by METRIC]: write the sweep's leaderboard."""

from __future__ import annotations

import argparse

from fer_lightning.leaderboard import write_leaderboard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweep_dir", help="a multirun folder, e.g. outputs/train/multiruns/<time>")
    parser.add_argument("--rank-by", default="val/acc_best", help="metric to rank by, higher is better")
    args = parser.parse_args()
    table = write_leaderboard(args.sweep_dir, args.rank_by)
    print(table.drop(columns=["error"]).to_string(index=False))


if __name__ == "__main__":
    main()
