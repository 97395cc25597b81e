"""Benchmark: what drawing one message costs, per profile, on one core (no network).

    python bench/message_profile.py --messages 20000

For each profile: µs of CPU per message (build + body hash, as a sender does before each
transaction), mean and median size, and the one-off cost of the process's attachment pool.
``make_message`` (the raw-rate message before profiles existed) is measured beside the
fixed profile, so the indirection's cost shows.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from maildrill.load.ledger import make_message
from maildrill.load.message import MessageFactory, attachment_pool, load_profile


def per_message_us(make: object, count: int) -> float:
    assert callable(make)
    start = time.process_time()
    for _ in range(count):
        make()
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| what | µs/message | mean size | median size | attachment pool |")
    print("|---|---|---|---|---|")
    us = per_message_us(lambda: make_message("r", "a@x", "b@y", 2048), args.messages)
    size = len(make_message("r", "a@x", "b@y", 2048)[1]) / 1024
    print(f"| make_message 2048 | {us:.1f} | {size:.1f} KB | {size:.1f} KB | - |")
    for spec in ("fixed", "default"):
        profile = load_profile(spec)
        start = time.process_time()
        factory = MessageFactory(profile, "r", seed=1)
        pool_ms = (time.process_time() - start) * 1e3
        us = per_message_us(lambda f=factory: f.make("a@x", ["b@y"]), args.messages)
        sizes = [len(factory.make("a@x", ["b@y"]).raw) for _ in range(args.messages)]
        print(
            f"| profile {spec} | {us:.1f} | {statistics.mean(sizes) / 1024:.1f} KB | "
            f"{statistics.median(sizes) / 1024:.1f} KB | "
            + (f"{pool_ms:.0f} ms once |" if not profile.fixed else "- |")
        )
    attachment_pool.cache_clear()


if __name__ == "__main__":
    main()
