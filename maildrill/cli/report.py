"""``maildrill report``: render a run's results.json into report.html, capacity.html and
junit.xml. The exit code is the gate after waivers (0 pass, 1 fail, 2 bad input); stderr
says it, with one line per cause when it fails.

Usage::

    maildrill report out/results.json --out out/
    maildrill report out/results.json --baseline 2025Q1/results.json \\
        --waivers targets/waivers.toml --out out/
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from maildrill.cli.ready import baseline_ready, out_ready, waivers_ready
from maildrill.errors import ConfigError

HELP = """Render results.json into report.html, capacity.html and junit.xml.

Reads only the results file (and the baseline and waiver files, if given). The exit code is
the gate: 0 when every control passed (waived failures count as passed) and the load run,
if any, met its SLO; 1 otherwise, or when a waiver has expired, and stderr says why:
'gate: FAIL' and one line per cause. A results file of another schema_version is exit 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, metavar="RESULTS.json", help="a run's results")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="directory to write the reports"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="OLD.json",
        help="an earlier run's results.json to compare the load figures with (S23)",
    )
    parser.add_argument(
        "--waivers", type=Path, metavar="FILE", help="waiver file (TOML), see targets/"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=10.0,
        metavar="PCT",
        help="highlight baseline metrics worse by more than PCT %% (default: 10)",
    )


def run(args: argparse.Namespace) -> int:
    # every input first: a malformed one stops everything with exit 2, nothing rendered
    waivers = waivers_ready(args.waivers)
    if args.threshold < 0:
        raise ConfigError(f"--threshold: must be a percentage ≥ 0 (got {args.threshold})")
    from maildrill.controls.gate import causes, console_lines
    from maildrill.reports import load_run, render_all

    run = load_run(args.results)
    baseline_ready(args.baseline)
    out_ready(args.out)
    today = datetime.now(UTC).date()
    found = causes(run, waivers, today)
    outcome = render_all(
        args.results,
        args.out,
        baseline=args.baseline,
        waivers=waivers,
        today=today,
        threshold=args.threshold / 100,
        gate=found,
    )
    for path in (outcome.report_html, outcome.capacity_html, outcome.junit_xml):
        print(path)
    if outcome.regressions:
        print(f"{outcome.regressions} metric(s) regressed against the baseline", file=sys.stderr)
    for line in console_lines(outcome.causes):
        print(line, file=sys.stderr)
    return outcome.exit_code
