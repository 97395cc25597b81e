"""The ``maildrill`` command: one subcommand per job, each in its own module.

Exit codes (documented in ``--help`` and the README):
0 every control passed, 1 the gate failed (stderr names each cause), 2 usage or
configuration error (found before the first probe), 3 target unreachable, 130/143/129
interrupted by SIGINT/SIGTERM/SIGHUP (partial results are kept; :mod:`maildrill.interrupt`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Protocol

from maildrill import __version__, interrupt
from maildrill.errors import MaildrillError

EXIT_CODES = """\
exit codes:
  0  every control passed (and the load run met its SLO where one was asked)
  1  the gate failed: a control failed or errored, a waiver expired, the load run
     missed its SLO; stderr says 'gate: FAIL' and one line per cause
  2  usage or configuration error, found before the first probe (bad target file,
     password, safety rule, option, --out, waiver file; a selection of no control)
  3  target unreachable (refused, timed out, name not found)
  130 interrupted with Ctrl-C (SIGINT); partial results are kept on disk
  143 interrupted by SIGTERM; load stopped, partial results kept as for 130
  129 interrupted by SIGHUP (the terminal went away); as for 130
"""


class Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# subcommand -> (module implementing Command, one-line help); explicit, no discovery magic.
# Only the chosen subcommand's module is imported: the load engine pulls in Locust and gevent,
# which have no business slowing down or warning in 'maildrill check'.
COMMANDS: dict[str, tuple[str, str]] = {
    "drill": ("maildrill.cli.drill", "checks, a full-chain load run and the reports, in one go"),
    "check": ("maildrill.cli.check", "run the conformance suites against a target (CI gate)"),
    "load": ("maildrill.cli.load", "generate SMTP/IMAP/POP3 load and measure it"),
    "report": ("maildrill.cli.report", "render the reports from a results.json"),
    "serve": ("maildrill.cli.serve", "run the embedded pure-Python mail system"),
    "stack": ("maildrill.cli.stack", "the real Postfix/Dovecot reference stack on loopback"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maildrill",
        description="Load-testing and compliance verification for enterprise mail systems "
        "(SMTP, IMAP, POP3, webmail). Run 'maildrill drill' with no target to see it all "
        "against the embedded target.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"maildrill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, summary) in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=summary)
            continue
        module: Command = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=summary,
            description=module.HELP,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    with interrupt.handled():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(args._run(args))
        sys.stdout.flush()  # a buffered stdout meets a gone reader here, not at exit
    except MaildrillError as exc:
        print(f"maildrill {args.command}: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print(f"maildrill {args.command}: interrupted{interrupt.describe()}", file=sys.stderr)
        code = interrupt.exit_code()
    except BrokenPipeError:
        # the reader went away (``maildrill stack up | head -1``): what was done is done;
        # point stdout at /dev/null so the interpreter's final flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, as a shell reports a command killed by it
    return code
