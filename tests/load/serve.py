"""Start one scripted SMTP server of :mod:`tests.load.servers` and wait, for trying
``maildrill load`` against it by hand (docs/reliability.md quotes such runs)::

    python -m tests.load.serve trickle_banner --dir /tmp/trickle &
    maildrill load --target /tmp/trickle/target.toml --scenario smtp_inbound --rate 20

It writes DIR/target.toml for the server's port, prints one line, and serves until it is
interrupted (SIGINT or SIGTERM), then prints what the server saw.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from tests.load.servers import BEHAVIOURS, smtp_server, write_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("behaviour", choices=BEHAVIOURS)
    parser.add_argument("--dir", type=Path, required=True, help="where target.toml goes")
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    parser.add_argument("--stall-at", type=float, default=5.0, metavar="T")
    parser.add_argument("--stall-for", type=float, default=3.0, metavar="S")
    args = parser.parse_args()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    options = {"stall_at_s": args.stall_at, "stall_s": args.stall_for}
    with smtp_server(args.behaviour, port=args.port, **options) as server:
        target = write_target(args.dir, server.port)
        print(f"{args.behaviour} on 127.0.0.1:{server.port}; target {target}", flush=True)
        done.wait()
        print(
            f"seen: {server.connections} connections, {server.messages} messages accepted",
            flush=True,
        )


if __name__ == "__main__":
    main()
