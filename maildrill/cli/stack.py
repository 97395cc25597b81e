"""The reference mail stack: real Postfix, Dovecot, OpenDKIM, SpamAssassin and Knot.

  maildrill stack up [--profile good|weak] [--weakness ID ...] [--net 127.0.N] [--dir DIR]
                                                         start it; writes DIR/target.toml
  maildrill stack status [--dir DIR]                     every service: pid and ports
  maildrill stack down [--dir DIR]                       stop every daemon by pid

The good profile does the seed's policies right; the weak profile turns on every weakness
in maildrill/stack/weaknesses.toml, or only those named with --weakness (to prove a check
against exactly one weakness). Good listens on 127.0.1.x, weak on 127.0.2.x (--net moves
either), so both can run at once from different --dir. DIR/target-raw.toml points its
smtp endpoint at the inbound port without milters, for raw-throughput load runs. Needs
root and the Debian packages of scripts/install-debian-packages.sh.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maildrill.stack.control import down, load_state, status, up
from maildrill.stack.layout import PROFILES
from maildrill.target import Role, load_target

HELP = __doc__ or ""
DEFAULT_DIR = Path(".maildrill-stack")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "status", "down"))
    parser.add_argument(
        "--profile", choices=PROFILES, default="good", help="(up) which stack to run"
    )
    parser.add_argument(
        "--weakness",
        action="append",
        metavar="ID",
        help="(up --profile weak) turn on only this weakness of weaknesses.toml; repeatable",
    )
    parser.add_argument(
        "--net",
        metavar="127.0.N",
        help="(up) loopback block to listen on (default 127.0.1 for good, 127.0.2 for weak)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"stack directory: configs, logs, mailboxes, state (default {DEFAULT_DIR})",
    )


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir.absolute()
    if args.action == "up":
        only = frozenset(args.weakness) if args.weakness else None
        state = up(root, args.profile, only=only, net=args.net)
        weak = f" (weaknesses: {', '.join(state.weaknesses)})" if state.weaknesses else ""
        print(
            f"stack up: profile {state.profile}{weak}, {len(state.services)} daemons in "
            f"{state.up_seconds:.1f} s\n"
            f"target file: {state.target_file}\n"
            f"raw-throughput target (no milters): {state.raw_target_file}"
        )
        return 0
    if args.action == "status":
        state = load_state(root)
        services = status(root)
        weak = f"; weaknesses: {', '.join(state.weaknesses)}" if state.weaknesses else ""
        print(f"stack {state.root} (profile {state.profile}{weak})")
        for svc in services:
            ports = " ".join(f"{h}:{p}{'' if ok else '(down)'}" for h, p, ok in svc.ports)
            print(f"  {svc.name:<15} {'up' if svc.up else 'DOWN':<5} pid {svc.pid:<8} {ports}")
        raw = load_target(state.raw_target_file).endpoints[Role.SMTP]
        print(f"target file: {state.target_file}")
        print(f"raw inbound, no milters: {raw.host}:{raw.port} ({state.raw_target_file})")
        return 0 if all(s.up for s in services) else 1
    seconds, killed = down(root)
    note = f"; killed after timeout: {killed}" if killed else ""
    print(f"stack down in {seconds:.1f} s{note}", file=sys.stdout)
    return 0
