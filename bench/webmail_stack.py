"""Benchmark: webmail sessions per second through the good reference stack's Roundcube
(nginx + PHP-FPM, IMAP to Dovecot, submission to Postfix), at a series of offered rates.

    sudo python bench/webmail_stack.py --dir /tmp/mdweb --rates 5,10,20,40 --duration 15

Starts the good stack in DIR unless one is already running there (``--net`` picks the
loopback block), runs the ``webmail`` scenario once per rate and prints, per rate, the
sessions completed per second, the transaction p50/p99 (from each arrival's intended
start) and the errors, with the machine and load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from good_stack import good_stack  # bench/ is on sys.path when a script in it runs

from maildrill.cli.load import summary_table
from maildrill.load import run_load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/maildrill-bench-webmail"))
    parser.add_argument("--net", default="127.0.79")
    parser.add_argument("--rates", default="5,10,20,40", help="comma-separated sessions/s")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--users", type=int, default=None)
    args = parser.parse_args()
    rows = []
    with good_stack(args.dir, net=args.net) as root:
        for rate in (float(r) for r in args.rates.split(",")):
            load_avg = os.getloadavg()[0]
            load = run_load(
                root / "target.toml", "webmail", duration_s=args.duration, rate=rate,
                users=args.users, out_dir=args.dir / f"bench-out-{rate:g}",
            )  # fmt: skip
            print(summary_table(load), flush=True)
            tx = next(p for p in load.phases if p.name == "transaction")
            done = tx.count - tx.failures
            rows.append(
                f"| {rate:g} | {done / load.duration_s:.1f} | {tx.latency.p50_us / 1000:.0f} | "
                f"{tx.latency.p99_us / 1000:.0f} | {tx.failures} | "
                f"{', '.join(f'{k} {v}' for k, v in sorted(load.errors.items())) or '-'} | "
                f"{load_avg:.1f} |"
            )
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs")
    print("| offered/s | sessions/s | p50 ms | p99 ms | failed | errors | load avg |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
