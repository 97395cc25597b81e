"""maildrill check: run the conformance suites against a target and gate on the verdicts.

Runs ``pytest conformance --target FILE`` in this process, collects one result per
control, writes ``results.json`` and the reports into ``--out``, and exits 0 when every
control passed (or is waived, or not applicable), 1 when one failed or could not be checked
(``error``: the gate does not pass what it could not see), printing each cause on stderr.
What can be known before the first probe (:mod:`maildrill.cli.ready`) and a selection of
no control are exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from maildrill.cli.ready import ready
from maildrill.controls.gate import Cause, causes, console_lines, exit_code
from maildrill.controls.session import ChecksInterrupted, run_checks
from maildrill.controls.waivers import Waivers
from maildrill.reports import render_all
from maildrill.results import RunResults, TargetInfo, write_results
from maildrill.target import POLICIES

HELP = """Verify a mail system's conformance: reachability, TLS policy, DNS records, filtering.

Each check is a pytest test in the conformance/ suites; this runs them against --target and
writes results.json, report.html and junit.xml into --out. Equivalent to
'pytest conformance --target FILE' plus the reports. -k and --control select checks by the
control IDs the report shows; a selection of no control is exit 2. When the gate fails,
stderr says why: 'gate: FAIL' and one line per cause."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, metavar="FILE", help="target file (TOML)")
    add_common(parser)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("maildrill-out"), metavar="DIR",
        help="where results.json and the reports go (default: ./maildrill-out)",
    )  # fmt: skip
    parser.add_argument(
        "--policy", metavar="NAME",
        choices=POLICIES,
        help="policy profile to verify (default: the target file's)",
    )  # fmt: skip
    parser.add_argument("--waivers", type=Path, metavar="FILE", help="waiver file (TOML)")
    parser.add_argument(
        "-k", dest="keyword", metavar="EXPR",
        help="only the controls whose ID (as the report shows it: TLS-VERSIONS[smtp]) or test name "
        "matches EXPR, as pytest -k matches: a part of it, any case, with and/or/not",
    )  # fmt: skip
    parser.add_argument(
        "--control", action="append", default=[], metavar="ID",
        help="only this control: its full ID (REACH-CONNECT[imap]), or its base ID for every "
        "subject (TLS-VERSIONS); * and ? match any characters ('TLS-*'); repeatable",
    )  # fmt: skip


def finish(
    run: RunResults,
    out: Path,
    *,
    waivers: Waivers | None,
    baseline: Path | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Write results.json and the reports; print the gate and its causes on stderr; return
    the gate's exit code."""
    results_path = write_results(run, out / "results.json")
    say(f"results: {results_path}")
    today = datetime.now(UTC).date()
    found = causes(run, waivers, today)
    outcome = render_all(
        results_path, out, baseline=baseline, waivers=waivers, today=today, gate=found
    )
    for path in outcome.paths:
        say(f"report: {path}")
    print_gate(found)
    return exit_code(found)


def print_gate(found: list[Cause]) -> None:
    """``gate: pass``, or ``gate: FAIL`` and one line per cause, on stderr."""
    for line in console_lines(found):
        print(line, file=sys.stderr, flush=True)


def print_summary(run: RunResults, say: Callable[[str], None] = print) -> None:
    """The verdicts counted, and the warnings of controls that passed; the failures and
    errors are the gate's causes, which :func:`finish` lists (after waivers) on stderr."""
    counts = run.counts()
    warned = [c for c in run.controls if c.warnings]
    say(
        f"controls: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['error']} errors, {counts['not-applicable']} not applicable"
        + (f"; {len(warned)} with warnings" if warned else "")
    )
    for c in warned:
        for warning in c.warnings:
            say(f"  WARN  {c.id:<28} [{c.severity}] {warning}")


def run(args: argparse.Namespace) -> int:
    from maildrill.controls.preflight import preflight

    target, waivers = ready(Path(args.target), out=args.out, waivers=args.waivers)
    say = _say
    say(f"maildrill check: {target.name} ({target.domain}), policy {args.policy or target.policy}")
    preflight(target, progress=say)
    run = RunResults.start(TargetInfo.of(target), command=["maildrill", *sys.argv[1:]])
    try:
        controls = run_checks(
            target, policy=args.policy, keyword=args.keyword, controls=args.control
        )
    except KeyboardInterrupt as exc:
        partial = exc.controls if isinstance(exc, ChecksInterrupted) else []
        run = run.finished(interrupted=True, controls=partial)
        # the controls checked so far, rendered as drill does: an auditor can read what
        # was found before the stop; the exit code still says the run was interrupted
        print_summary(run, say)
        finish(run, args.out, waivers=waivers, say=say)
        say(f"interrupted: {len(partial)} controls kept in {args.out / 'results.json'}")
        raise
    run = run.finished(controls=controls)
    print_summary(run, say)
    return finish(run, args.out, waivers=waivers, say=say)


def _say(line: str) -> None:
    print(line, flush=True)
