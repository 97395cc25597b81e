"""maildrill load: run a load scenario against a target and write results.json."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maildrill import interrupt
from maildrill.cli.ready import out_ready, ready, target_ready
from maildrill.controls.gate import causes, console_lines, exit_code
from maildrill.errors import ConfigError
from maildrill.load.plan import POLL_INTERVAL_S, SCENARIOS, SHAPES, WATCHERS
from maildrill.load.runner import Master, run_load, run_worker
from maildrill.results import LoadResult, RunResults, TargetInfo, write_results

HELP = """Generate mail load (SMTP, IMAP, POP3, webmail) against a target and measure it.

Runs a Locust scenario from loadtests/ headless in a subprocess for --duration seconds (plus
a grace period for delivery), prints progress every 5 s, and writes OUT/results.json with
per-phase p50/p90/p99/p99.9/max (HDR histograms, microseconds), throughput over time,
errors by kind and reply code, and for full_chain the delivery latency and the fate of every
message. full_chain's watchers see messages arrive over IMAP (IDLE) or POP3 (polling, --watch
pop3); a message counts as seen when a listing shows it, so delivery latency is measured to
within --poll-interval. Load is refused unless every address of every endpoint used is
inside the target's safety.allowed_networks; --rate may not exceed safety.max_rate. These,
the accounts' passwords, every option and --out are checked before any traffic (exit 2).
A run that misses its SLO, loses a worker or ends before its plan exits 1, and stderr says
why: 'gate: FAIL' and one line per cause. Ctrl-C, SIGTERM or SIGHUP stop every Locust
process at once and keep what was measured (interrupted=true; exit 130, 143, 129); if
maildrill is killed outright, its Locust processes die with it.

Distributed, as Locust's own mode: --processes N runs N workers on this machine; across
machines, one run takes --master [--expect-workers N] and each other machine runs
`maildrill load --worker --master-host HOST --target FILE`, which takes the scenario and
every option from the master and its own target file only for the accounts' passwords and
its safety rules (a worker whose file does not allow the master's nodes or rate refuses
with one line). The master writes results.json; histograms are merged exactly. A worker
that vanishes before the end (killed, crashed, no final report) is reported, with when,
and fails the run (slo.workers_lost)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, type=Path, metavar="FILE", help="target file")
    parser.add_argument(
        "--scenario", default="full_chain", choices=sorted(SCENARIOS),
        help="scenario from loadtests/ (default: full_chain)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, metavar="R",
        help="messages (or sessions) per second to aim for; default: safety.max_rate",
    )  # fmt: skip
    parser.add_argument(
        "--shape", default="constant", choices=SHAPES,
        help="arrival rate over time: constant; step (4 steps up to --rate); spike (a "
        "quarter of --rate, the full rate from 40%% to 60%% of the run) (default: constant)",
    )  # fmt: skip
    parser.add_argument("--users", type=int, metavar="U", help="concurrent Locust users")
    parser.add_argument(
        "--duration", type=float, default=20.0, metavar="S", help="seconds of load (default 20)"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="S",
        help="seconds one whole SMTP transaction or IMAP/POP3/webmail session may take "
        "before it counts as a timeout, however slowly the server trickles (default 10)",
    )  # fmt: skip
    add_traffic_arguments(parser)
    parser.add_argument(
        "--per-session", type=int, metavar="N",
        help="messages sent over one SMTP connection before a new one (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--grace", type=float, metavar="S",
        help="full_chain: seconds to wait for delivery after sending ends (default: the "
        "SLO's delivery_p99_s, at least 5)",
    )  # fmt: skip
    parser.add_argument(
        "--processes", type=int, default=1, metavar="N",
        help="Locust worker processes; histograms are merged exactly (default 1)",
    )  # fmt: skip
    add_distributed_arguments(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("maildrill-out"), metavar="DIR",
        help="where results.json goes (default: ./maildrill-out)",
    )  # fmt: skip


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """Locust's own master and workers, across machines (``--processes`` is one machine)."""
    dist = parser.add_argument_group("distributed over machines (Locust's master and workers)")
    dist.add_argument(
        "--master", action="store_true",
        help="be the master: wait for --expect-workers workers, then run the scenario on them",
    )  # fmt: skip
    dist.add_argument(
        "--expect-workers", type=int, default=1, metavar="N",
        help="--master: workers to wait for (default 1)",
    )  # fmt: skip
    dist.add_argument(
        "--expect-workers-wait", type=float, default=60.0, metavar="S",
        help="--master: give up if they have not all connected within S seconds (default 60)",
    )  # fmt: skip
    dist.add_argument(
        "--master-bind-host", default="*", metavar="HOST",
        help="--master: interface to listen on for workers (default *: all, as Locust's)",
    )  # fmt: skip
    dist.add_argument(
        "--master-bind-port", type=int, default=5557, metavar="PORT",
        help="--master: port to listen on (default 5557)",
    )  # fmt: skip
    dist.add_argument(
        "--worker", action="store_true",
        help="be a worker of the master at --master-host; every other option but --target "
        "and --out comes from the master",
    )  # fmt: skip
    dist.add_argument(
        "--master-host", metavar="HOST", help="--worker: the master's address"
    )  # fmt: skip
    dist.add_argument(
        "--master-port", type=int, default=5557, metavar="PORT",
        help="--worker: the master's port (default 5557)",
    )  # fmt: skip


def add_traffic_arguments(parser: argparse.ArgumentParser) -> None:
    """What the messages look like, what the mailboxes hold and how full_chain watches
    them: shared by ``maildrill load`` and ``maildrill drill``."""
    parser.add_argument(
        "--message-profile", metavar="fixed|default|FILE.toml",
        help="what the messages look like: fixed (one --message-size text/plain message to "
        "one recipient: the raw-rate case, the default); default (80%% 2-8 KB text, 15%% "
        "20-200 KB and 5%% 1-5 MB with a base64 attachment; 85%% one recipient, 15%% 2-5); "
        "or a TOML file of size and recipient bands (docs/load.md). A message over the "
        "target's SIZE limit is a rejected copy counted by its reply code (552), not lost",
    )  # fmt: skip
    parser.add_argument(
        "--message-size", type=int, metavar="BYTES",
        help="size of each message of the fixed profile (default 2048)",
    )  # fmt: skip
    parser.add_argument(
        "--recipients", metavar="N|A-B",
        help="recipients per message, every one or drawn uniformly from A to B; overrides "
        "the profile's (default 1). Each (message, recipient) copy is accounted for",
    )  # fmt: skip
    parser.add_argument(
        "--prepopulate", type=int, metavar="M",
        help="before the run, top every test account's INBOX up to M messages over IMAP "
        "APPEND (like imaptest's msgs=; an account already holding M gets none), drawn from "
        "--message-profile or else the default profile; full_chain's watchers leave them in place",
    )  # fmt: skip
    parser.add_argument(
        "--watch", choices=sorted(WATCHERS),
        help="full_chain: how the watchers see messages arrive: imap (a session per account "
        "in IDLE, searching anyway every --poll-interval) or pop3 (a POP3 or POP3S session "
        "per account every --poll-interval: UIDL, RETR, DELE) (default: imap)",
    )  # fmt: skip
    parser.add_argument(
        "--poll-interval", type=float, metavar="S",
        help="full_chain: seconds between a watcher's looks at a mailbox, which bounds the "
        "resolution of delivery latency (default: "
        + ", ".join(f"{k} {v:g}" for k, v in POLL_INTERVAL_S.items())
        + ")",
    )  # fmt: skip


def traffic_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~maildrill.load.run_load` keywords of :func:`add_traffic_arguments`."""
    return {
        "message_profile": args.message_profile,
        "message_size": args.message_size,
        "recipients": args.recipients,
        "prepopulate": args.prepopulate,
        "watch": args.watch,
        "poll_interval_s": args.poll_interval,
    }


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`~maildrill.load.runner.plan_load`, which :func:`run_load`
    takes too: checked before any traffic, then run."""
    return {
        "scenario": args.scenario,
        "duration_s": args.duration,
        "users": args.users,
        "rate": args.rate,
        "shape": args.shape,
        "timeout_s": args.timeout,
        "per_session": args.per_session,
        "grace_s": args.grace,
        **traffic_options(args),
    }


def run(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise ConfigError("--processes: must be at least 1")
    if args.worker:
        return _serve_master(args)
    target, _ = ready(args.target, out=args.out, load=load_options(args))
    master = _master(args)
    results = RunResults.start(TargetInfo.of(target))
    try:
        load = _run_load(args, master)
    except KeyboardInterrupt:
        write_results(results.finished(interrupted=True), args.out / "results.json")
        raise
    # interrupted by a signal; a load Locust ended early on its own is the gate's to judge
    signalled = load.interrupted and interrupt.received() is not None
    run = results.finished(load=load, interrupted=signalled)
    path = write_results(run, args.out / "results.json")
    print(summary_table(load))
    print(f"results: {path}")
    if signalled:
        print(
            f"maildrill load: interrupted{interrupt.describe()}: the load was stopped, "
            "partial results kept",
            file=sys.stderr,
        )
        return interrupt.exit_code()
    found = causes(run, None, datetime.now(UTC).date())
    for line in console_lines(found):
        print(line, file=sys.stderr, flush=True)
    return exit_code(found)


def _run_load(args: argparse.Namespace, master: Master | None) -> LoadResult:
    return run_load(
        args.target,
        out_dir=args.out,
        processes=args.processes,
        master=master,
        progress=lambda line: print(f"  {line}", flush=True),
        **load_options(args),
    )


def _serve_master(args: argparse.Namespace) -> int:
    if args.master or args.processes > 1:
        raise ConfigError("--worker: not with --master or --processes")
    if not args.master_host:
        raise ConfigError("--worker: --master-host HOST is required")
    # the plan comes from the master; the passwords, and the logs' place, are this machine's
    target_ready(args.target)
    out_ready(args.out)
    return run_worker(
        args.target,
        args.master_host,
        args.master_port,
        log_path=args.out / "locust-worker.log",
        progress=lambda line: print(line, flush=True),
    )


def _master(args: argparse.Namespace) -> Master | None:
    if not args.master:
        return None
    if args.processes > 1:
        raise ConfigError("--master: not with --processes (workers come from --worker)")
    if args.expect_workers < 1 or args.expect_workers_wait <= 0:
        raise ConfigError("--expect-workers: at least 1, within more than 0 seconds")
    master = Master(
        args.expect_workers, args.master_bind_host, args.master_bind_port, args.expect_workers_wait
    )
    print(
        f"master: waiting up to {master.wait_s:g} s for {master.workers} worker(s) on "
        f"{master.bind_host}:{master.bind_port}",
        flush=True,
    )
    return master


def summary_table(load: LoadResult) -> str:
    """The per-phase figures as a fixed-width table, in milliseconds."""
    lines = [
        f"{load.scenario}: {load.requests} arrivals, {load.failures} failed"
        + (f" ({load.not_served} not served)" if load.not_served else "")
        + f", {load.throughput_rps:.1f}/s served over {load.duration_s:.1f} s"
        + (" (interrupted)" if load.interrupted else ""),
        f"{'phase':<22}{'count':>8}{'fail':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}"
        f"{'max':>9}  ms",
    ]
    rows = [
        (f"{p.request_type} {p.name}", p.count, p.failures, p.latency)
        for p in load.phases
        if p.request_type != "delivery"  # the row below
    ]
    rows += [(f"class {p.name}", p.count, p.failures, p.latency) for p in load.by_class]
    if load.delivery is not None:
        rows.append(("delivery", load.delivery.count, 0, load.delivery))
    for label, count, fails, lat in rows:
        figures = (lat.p50_us, lat.p90_us, lat.p99_us, lat.p999_us, lat.max_us)
        lines.append(
            f"{label:<22}{count:>8}{fails:>6}" + "".join(f"{v / 1000:>9.1f}" for v in figures)
        )
    if load.accounting is not None:
        a = load.accounting
        rejected = ", ".join(f"{k}: {v}" for k, v in sorted(a.rejected.items())) or "none"
        fate = (
            f", delivered {a.delivered}, lost {a.lost}, duplicated {a.duplicated}, "
            f"corrupted {a.corrupted}, misdelivered {a.misdelivered}, pending {a.pending}, "
            f"unobserved {a.unobserved}"
            if load.delivery is not None  # only full_chain watches the mailboxes
            else ""
        )
        # one recipient each: a copy is a message; else the counts are of copies
        label = "messages" if a.messages == a.sent else f"{a.messages} messages, copies"
        lines.append(f"{label}: sent {a.sent}, accepted {a.accepted}{fate}, rejected {rejected}")
    if load.watch:
        lines.append(
            f"watchers: {load.watch}, a look every {load.poll_interval_s:g} s "
            "(the resolution of delivery latency)"
        )
    if load.slo is not None:
        judged = ", ".join(
            f"{k} {v.measured:g}/{v.limit:g} {'ok' if v.met else 'MISSED'}"
            + (f" ({v.note})" if v.note else "")
            for k, v in load.slo.checks.items()
        )
        verdict = "met" if load.slo.met else "MISSED"
        # an interrupted run is judged on what it measured before the stop, no more
        partial = " on the partial figures of an interrupted run" if load.interrupted else ""
        lines.append(f"SLO {verdict}{partial}: {judged}")
    for step in load.steps:
        lines.append(
            f"step {step.rate:g}/s ({step.start_s:g}-{step.end_s:g} s): achieved "
            f"{step.achieved_rps:g}/s, SLO {'met' if step.slo.met else 'MISSED'}"
        )
    if load.steps:
        lines.append(
            f"capacity: {load.capacity:g}/s (highest step meeting the SLO)"
            if load.capacity is not None
            else "capacity: not reached (the first step missed the SLO)"
        )
    for w in load.workers_lost:
        pid = f", pid {w.pid}" if w.pid is not None else ""
        heard = "never" if w.last_report_s is None else f"t={w.last_report_s:g}s"
        lines.append(
            f"worker #{w.index} LOST ({w.worker}{pid}) at t={w.lost_s:g}s: {w.reason}; "
            f"last report {heard}"
        )
    if load.errors:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(load.errors.items())))
    return "\n".join(lines)
