"""``maildrill serve``: the subcommand module (HELP, add_arguments, run)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from pathlib import Path

from maildrill.embedded.server import LabConfig, serve

HELP = """Run the embedded mail system (the zero-install demonstration and test target).

Starts, on 127.0.0.1 ephemeral ports, a DNS server, SMTP (MX), submission, SMTPS, IMAP,
IMAPS, POP3 and POP3S with a private CA, then writes a target file describing them; the
file's appearance means every service listens. Runs until Ctrl-C or SIGTERM.
Mail for other domains accepted on submission is discarded (no outbound relay)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="directory for keys, certificates, passwords and Maildirs (default: a new "
        "temporary directory)",
    )
    parser.add_argument(
        "--write-target",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write the target file (default: DIR/target.toml)",
    )
    parser.add_argument(
        "--accounts", type=int, default=20, help="number of accounts user0001… (default 20)"
    )
    parser.add_argument(
        "--domain", default="example.test", help="mail domain (default example.test)"
    )
    parser.add_argument(
        "--no-mailbox-starttls",
        action="store_true",
        help="plain IMAP and POP3 offer no STARTTLS and take logins in plain text (a weak "
        "target, for testing clients against such servers)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (used by launch())",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # aiosmtpd warns on every SMTPS connection that AUTH does not require STARTTLS; on
    # an implicit-TLS port that is intended
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    if args.accounts < 1:
        from maildrill.errors import ConfigError

        raise ConfigError("--accounts: must be at least 1")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="maildrill-serve-"))
    config = LabConfig(
        directory,
        args.accounts,
        args.domain.lower(),
        args.write_target,
        parent_pid=os.getppid() if args.exit_with_parent else None,
        mailbox_starttls=not args.no_mailbox_starttls,
    )
    asyncio.run(serve(config))
    return 0
