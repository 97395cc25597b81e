"""maildrill check: run the conformance suites against a target and gate on the verdicts.

Runs ``pytest conformance --target FILE`` in this process, collects one result per
control, writes ``results.json`` and the reports into ``--out``, and exits 0 when every
control passed (or is waived, or not applicable), 1 when one failed or could not be checked
(``error``: the gate does not pass what it could not see).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from maildrill.controls.gate import decide
from maildrill.controls.session import ChecksInterrupted, run_checks
from maildrill.controls.waivers import Waivers, load_waivers
from maildrill.reports import render_all
from maildrill.results import RunResults, TargetInfo, write_results
from maildrill.target import POLICIES, load_target

HELP = """Verify a mail system's conformance: reachability, TLS policy, DNS records, filtering.

Each check is a pytest test in the conformance/ suites; this runs them against --target and
writes results.json, report.html and junit.xml into --out. Equivalent to
'pytest conformance --target FILE' plus the reports."""


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
        "-k", dest="keyword", metavar="EXPR", help="only the checks matching EXPR (pytest -k)"
    )


def load_waivers_early(path: Path | None) -> Waivers | None:
    """Read the waiver file before any check, so a malformed one stops the run (exit 2)."""
    return None if path is None else load_waivers(path)


def finish(
    run: RunResults,
    out: Path,
    *,
    waivers: Waivers | None,
    baseline: Path | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Write results.json and the reports; print the summary; return the gate's exit code."""
    results_path = write_results(run, out / "results.json")
    say(f"results: {results_path}")
    today = datetime.now(UTC).date()
    code = decide(run, waivers, today)
    outcome = render_all(
        results_path, out, baseline=baseline, waivers=waivers, today=today, gate=code
    )
    for path in outcome.paths:
        say(f"report: {path}")
    return code


def print_summary(run: RunResults, say: Callable[[str], None] = print) -> None:
    counts = run.counts()
    warned = [c for c in run.controls if c.warnings]
    say(
        f"controls: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['error']} errors, {counts['not-applicable']} not applicable"
        + (f"; {len(warned)} with warnings" if warned else "")
    )
    # root causes first: what the server was seen doing wrong, then what could not be
    # checked; the checks one finding blocked are one line, not one each
    blocked: dict[str, list[str]] = {}
    for verdict in ("fail", "error"):
        for c in run.controls:
            first = (c.reason.splitlines() or [""])[0]
            if c.verdict != verdict:
                continue
            if verdict == "error" and first.startswith("blocked by "):
                blocked.setdefault(first, []).append(c.id)
                continue
            say(f"  {c.verdict.upper():<5} {c.id:<28} [{c.severity}] {first}")
    for reason, ids in blocked.items():
        say(f"  ERROR {len(ids)} controls {reason}")
        say(f"        ({', '.join(ids)})")
    for c in warned:
        for warning in c.warnings:
            say(f"  WARN  {c.id:<28} [{c.severity}] {warning}")


def run(args: argparse.Namespace) -> int:
    from maildrill.controls.preflight import preflight

    target = load_target(args.target)
    waivers = load_waivers_early(args.waivers)
    say = _say
    say(f"maildrill check: {target.name} ({target.domain}), policy {args.policy or target.policy}")
    preflight(target, progress=say)
    run = RunResults.start(TargetInfo.of(target), command=["maildrill", *sys.argv[1:]])
    try:
        controls = run_checks(target, policy=args.policy, keyword=args.keyword)
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
