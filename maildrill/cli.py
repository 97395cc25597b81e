"""The ``maildrill`` command: one subcommand per job, each in its own module.

Exit codes (documented in ``--help`` and the README):
0 every control passed, 1 a control failed, 2 usage or configuration error,
3 target unreachable, 130 interrupted (partial results are kept).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol

from maildrill import __version__
from maildrill.errors import MaildrillError

EXIT_CODES = """\
exit codes:
  0  every control passed (and the load run met its SLO where one was asked)
  1  a control failed, or the load run missed its SLO
  2  usage or configuration error (bad target file, bad option)
  3  target unreachable (refused, timed out, name not found)
  130 interrupted with Ctrl-C; partial results are kept on disk
"""


class Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# subcommand -> module implementing Command; explicit, no discovery magic
COMMANDS: dict[str, str] = {
    "drill": "maildrill.drill",
    "check": "maildrill.check",
    "serve": "maildrill.embedded.cli",
    "load": "maildrill.load.cli",
    "report": "maildrill.report_cli",
    "stack": "maildrill.stack.cli",
}


def build_parser() -> argparse.ArgumentParser:
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
    for name, module_name in COMMANDS.items():
        try:
            module: Command = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("maildrill"):
                continue  # a subcommand not built yet
            raise
        p = sub.add_parser(
            name,
            help=module.HELP.splitlines()[0],
            description=module.HELP,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args._run(args))
    except MaildrillError as exc:
        print(f"maildrill {args.command}: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print(f"maildrill {args.command}: interrupted", file=sys.stderr)
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
