"""maildrill drill: the whole job in one command — checks, a load run, the reports.

With no ``--target`` it starts the embedded target (``maildrill serve``) in a child process
and drills that, so a fresh clone shows everything in one command.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maildrill import interrupt
from maildrill.cli.check import add_common, finish, print_summary
from maildrill.cli.load import add_traffic_arguments, traffic_options
from maildrill.cli.ready import baseline_ready, out_ready, target_ready, waivers_ready
from maildrill.controls.preflight import preflight
from maildrill.controls.session import ChecksInterrupted, run_checks
from maildrill.errors import ConfigError
from maildrill.results import RunResults, TargetInfo, write_results

HELP = """Run the quarterly drill: conformance checks, a full-chain load run, and the reports.

Without --target, starts the embedded pure-Python mail system on loopback and drills it.
Writes results.json, report.html, capacity.html and junit.xml into --out. The files, the
passwords, the load's safety rules and options and --out are checked before the first probe
(exit 2); when the gate fails, stderr says why: 'gate: FAIL' and one line per cause.
Ctrl-C, SIGTERM or SIGHUP stop the checks or the load at once and still write all four from
what was done (interrupted; exit 130, 143, 129)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", metavar="FILE", help="target file (TOML); default: start the embedded target"
    )
    add_common(parser)
    parser.add_argument(
        "--duration", type=float, default=20.0, metavar="S",
        help="seconds of full-chain load (default 20; 0 skips the load run)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=20.0, metavar="R",
        help="messages per second offered in the load run (default 20; capped by the "
        "target's safety.max_rate)",
    )  # fmt: skip
    parser.add_argument(
        "--users", type=int, default=4, metavar="N", help="concurrent load users (default 4)"
    )
    add_traffic_arguments(parser)
    parser.add_argument(
        "--baseline", type=Path, metavar="OLD.json",
        help="an earlier results.json to compare the load figures with (quarter over quarter)",
    )  # fmt: skip


@contextlib.contextmanager
def _target_file(args: argparse.Namespace) -> Iterator[Path]:
    if args.target:
        yield Path(args.target)
        return
    from maildrill.embedded import launch

    with tempfile.TemporaryDirectory(prefix="maildrill-embedded-") as tmp:
        say("starting the embedded target (no --target given) ...")
        started = time.perf_counter()
        with launch(Path(tmp)) as path:
            say(f"embedded target ready in {time.perf_counter() - started:.1f} s: {path}")
            yield path


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The full-chain run's :func:`~maildrill.load.run_load` keywords, as planned early."""
    return {
        "scenario": "full_chain",
        "duration_s": args.duration,
        "users": args.users,
        "rate": args.rate,
        **traffic_options(args),
    }


def run(args: argparse.Namespace) -> int:
    if args.duration < 0:
        raise ConfigError(f"--duration: must be 0 (no load run) or more (got {args.duration:g})")
    # before the embedded target is started: what the command line alone decides
    waivers = waivers_ready(args.waivers)
    baseline_ready(args.baseline)
    out: Path = out_ready(args.out)
    load_options = _load_options(args) if args.duration > 0 else None
    with _target_file(args) as path:
        target = target_ready(path, load=load_options)
        say(f"maildrill drill: {target.name} ({target.domain}), policy {target.policy}")
        say("preflight:")
        preflight(target, progress=say)
        run = RunResults.start(TargetInfo.of(target), command=["maildrill", *sys.argv[1:]])
        results_path = out / "results.json"
        interrupted = False
        try:
            say("conformance checks:")
            controls = run_checks(
                target, policy=args.policy, keyword=args.keyword, controls=args.control
            )
            run = run.model_copy(update={"controls": controls})
            write_results(run, results_path)  # kept even if the load run is interrupted
            if load_options is not None:
                from maildrill.load import run_load

                say(
                    f"full-chain load: {args.rate:g} msg/s, {args.users} users, "
                    f"{args.duration:g} s ..."
                )
                load = run_load(path, out_dir=out / "load", progress=say, **load_options)
                run = run.model_copy(update={"load": load})
                # the load run stopped its Locust and kept its figures; so do the rest
                interrupted = load.interrupted and interrupt.received() is not None
        except KeyboardInterrupt as exc:
            if isinstance(exc, ChecksInterrupted):
                run = run.model_copy(update={"controls": exc.controls})
            interrupted = True
        run = run.finished(interrupted=interrupted)
        print_summary(run, say)
        if run.load is not None:
            _print_load(run)
        # a load run Locust stopped before its plan was done (its backstop, no worker left)
        # is one of the gate's causes: partial figures cannot pass it
        code = finish(run, out, waivers=waivers, baseline=args.baseline, say=say)
        if interrupted:
            say(f"interrupted{interrupt.describe()}: partial results kept in {results_path}")
            return interrupt.exit_code()
        return code


def _print_load(run: RunResults) -> None:
    load = run.load
    assert load is not None
    say(
        f"load: {load.requests} arrivals, {load.failures} failed"
        + (f" ({load.not_served} not served)" if load.not_served else "")
        + f", {load.throughput_rps:.1f}/s served over {load.duration_s:.1f} s"
    )
    for phase in load.phases:
        lat = phase.latency
        say(
            f"  {phase.request_type:<5} {phase.name:<12} n={phase.count:<6} "
            f"p50={lat.p50_us / 1000:.2f}ms p99={lat.p99_us / 1000:.2f}ms "
            f"max={lat.max_us / 1000:.2f}ms"
        )
    if load.accounting is not None:
        acc = load.accounting
        say(
            f"  accounting: sent {acc.sent}, accepted {acc.accepted}, delivered {acc.delivered}, "
            f"lost {acc.lost}, duplicated {acc.duplicated}, corrupted {acc.corrupted}, "
            f"misdelivered {acc.misdelivered}, unobserved {acc.unobserved}"
        )
    if load.delivery is not None:
        d = load.delivery
        say(f"  delivery latency: p50={d.p50_us / 1000:.1f}ms p99={d.p99_us / 1000:.1f}ms")
    if load.slo is not None:
        misses = ", ".join(load.slo.missed())
        say("  SLO: met" if load.slo.met else f"  SLO: MISSED ({misses})")


def say(line: str) -> None:
    print(line, flush=True)
