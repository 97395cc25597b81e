"""Benchmark: ≥ 20,000 messages end to end through the good reference stack's inbound port
without milters (DIR/target-raw.toml), every one accounted for.

    sudo python bench/full_chain_stack.py --dir /tmp/mdstack --rate 250 --duration 90

Starts the good stack in DIR unless it is already running there (``--net`` picks the
loopback block), runs ``full_chain`` and prints the figures with the command and machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from good_stack import good_stack  # bench/ is on sys.path when a script in it runs

from maildrill.cli.load import summary_table
from maildrill.load import run_load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/maildrill-bench-stack"))
    parser.add_argument("--net", default="127.0.78")
    parser.add_argument("--rate", type=float, default=250)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--grace", type=float, default=60, help="seconds to drain the queue")
    args = parser.parse_args()
    with good_stack(args.dir, net=args.net) as root:
        t0 = time.monotonic()
        load = run_load(
            root / "target-raw.toml",
            "full_chain",
            duration_s=args.duration,
            rate=args.rate,
            users=args.users,
            processes=args.processes,
            grace_s=args.grace,
            out_dir=args.dir / "bench-out",
            progress=lambda line: print(f"  {line}", flush=True),
        )
        wall = time.monotonic() - t0
    print(summary_table(load))
    acc = load.accounting
    assert acc is not None
    unexplained = acc.lost + acc.duplicated + acc.corrupted + acc.pending
    print(
        f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs; wall {wall:.1f} s\n"
        f"accepted {acc.accepted}, delivered {acc.delivered}, unexplained {unexplained}, "
        f"rejected {acc.rejected}; end-to-end {acc.delivered / load.duration_s:.1f} msg/s"
    )
    return 0 if unexplained == 0 and acc.accepted >= 20_000 else 1


if __name__ == "__main__":
    sys.exit(main())
