"""Locust event listeners: HDR recording, exact merge across workers, accounting, output.

Importing this module (every scenario in ``loadtests/`` does) registers the listeners on
``locust.events``. In each process the ``request`` listener hands the event to
:class:`~maildrill.load.state.State`; workers ship what they measured to the master with
``report_to_master`` every second, and the master adds it up (``worker_report``). The master
(or the single local process) runs the full-chain watchers, prints progress, and ends the
run when every accepted message has been seen or the grace period is over.

Before the master quits it asks each worker for a *final* report (custom message
``maildrill:final``), sent once the worker's last transaction has finished, and waits for
all of them (bounded): Locust's own quit gives workers 0.5 s, so a worker's last partial
second could otherwise be missing from the figures the master writes on ``quit``. A worker
that goes missing, leaves early or sends no final report is reported as lost
(:mod:`~maildrill.load.roster`).

Stopping early (maildrill got SIGINT/SIGTERM/SIGHUP and sent Locust SIGTERM, which fires
``quitting``) stops every user at once, in flight or not, and tells the workers to do the
same (``maildrill:abort``) before Locust's quit, which would otherwise let each user finish
its task for up to ``--stop-timeout``. Each Locust process dies with its parent
(:mod:`~maildrill.load.lifeline`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from locust import events
from locust.env import Environment

from maildrill.errors import MaildrillError
from maildrill.load import lifeline
from maildrill.load.figures import WorkerReport
from maildrill.load.plan import (
    PLAN_ENV,
    WATCHERS,
    WORKER_ERROR,
    WORKER_TARGET_ENV,
    adopt_plan,
    current_plan,
)
from maildrill.load.roster import HELLO, NO_FINAL, Roster
from maildrill.load.state import State, settle_s

__all__ = ["STATE"]

# workers report every second rather than every 3 s, so the master's accounting and the
# end-of-run decision lag less
locust.runners.WORKER_REPORT_INTERVAL = 1.0

PROGRESS_PREFIX = "maildrill: "
FINAL_ASK = "maildrill:final"  # master -> worker: send your last figures when idle
FINAL_REPORT = "maildrill:final-report"  # worker -> master: the last figures
ABORT = "maildrill:abort"  # master -> worker: stop every user now, the run is interrupted
# the master's plan as JSON, in its parsed options: Locust hands a master's custom options to
# every worker with the spawn message, before test_start fires there
PLAN_OPTION = "maildrill_plan"
PACK_AFTER_S = 3  # the master encodes per-second histograms this old (late reports unpack)


STATE = State()
ROSTER = Roster()
# before Locust forks its --processes workers, which take the tie from here
LIFELINE = lifeline.claim()


def _options(parser: Any) -> None:
    parser.add_argument(
        "--maildrill-target",
        default="",
        help="target file, when running a maildrill scenario with plain 'locust -f'",
    )
    parser.add_argument(
        "--maildrill-watch",
        default="",
        choices=["", *WATCHERS],
        help="full_chain under plain 'locust -f': how the watchers see mail arrive "
        "(imap: IDLE sessions, the default; pop3: polling)",
    )


def _init(environment: Environment, **_: Any) -> None:
    lifeline.arm(LIFELINE)
    STATE.environment = environment
    # quitting fires its listeners last-added first: this one must come before the master
    # runner's own, which tells the workers to quit (and let their users finish)
    events_: Any = environment.events  # locust's EventHook is untyped
    events_.quitting.add_listener(_quitting)
    option = getattr(environment.parsed_options, "maildrill_target", "") or None
    locustfile = str(getattr(environment.parsed_options, "locustfile", "") or "")
    watch = getattr(environment.parsed_options, "maildrill_watch", "") or None
    runner = environment.runner
    worker = isinstance(runner, locust.runners.WorkerRunner)
    if worker and os.environ.get(WORKER_TARGET_ENV) and not os.environ.get(PLAN_ENV):
        STATE.plan = None  # a remote worker's comes from the master, see _test_start
    else:
        STATE.plan = current_plan(option, locustfile, watch)
    if isinstance(runner, locust.runners.WorkerRunner):
        runner.register_message(FINAL_ASK, _on_final_ask, concurrent=True)
        runner.register_message(ABORT, _on_abort)
        lifeline.follow_master(runner, lambda: _on_abort(environment, None))
    elif isinstance(runner, locust.runners.MasterRunner):
        runner.register_message(FINAL_REPORT, _on_final_report)
        runner.register_message(HELLO, ROSTER.on_hello)
        if environment.parsed_options is not None and STATE.plan is not None:
            setattr(environment.parsed_options, PLAN_OPTION, STATE.plan.to_json())


def _on_final_ask(environment: Environment, msg: Any, **_: Any) -> None:
    """Worker: once sending is over and nothing is in flight (bounded), report for good."""
    plan = STATE.plan
    limit = time.time() + (plan.timeout_s + 2 if plan else 5.0)
    while time.time() < limit and (STATE.sending() or STATE.in_flight):
        gevent.sleep(0.05)
    runner = environment.runner
    if runner is not None:
        runner.send_message(FINAL_REPORT, STATE.report().model_dump(mode="json"))


def _quitting(environment: Environment, **_: Any) -> None:
    """Locust is shutting down: after a normal end nothing is left to stop; on a signal
    the users must stop sending now, not after finishing their tasks."""
    runner = environment.runner
    if isinstance(runner, locust.runners.MasterRunner):
        ROSTER.close()  # from here on, workers leave because they are told to
        runner.send_message(ABORT)
    _on_abort(environment, None)


def _on_abort(environment: Environment, msg: Any, **_: Any) -> None:
    STATE.send_until = min(STATE.send_until, STATE.clock())
    environment.stop_timeout = 0  # Locust kills the users instead of waiting on them


def _on_final_report(environment: Environment, msg: Any, **_: Any) -> None:
    STATE.absorb(msg.node_id, WorkerReport.model_validate(msg.data))
    STATE.final_reports.add(msg.node_id)


def _collect_final_reports(environment: Environment) -> None:
    """Master: ask every worker for its last figures and wait for them (bounded)."""
    runner = environment.runner
    if not isinstance(runner, locust.runners.MasterRunner):
        return
    workers = ROSTER.live(set(runner.clients.keys()))
    if not workers:
        return
    runner.send_message(FINAL_ASK)
    plan = STATE.plan
    limit = time.time() + (plan.timeout_s + 5 if plan else 10.0)
    while time.time() < limit and not workers <= STATE.final_reports:
        gevent.sleep(0.05)
    for worker in workers - STATE.final_reports:
        ROSTER.lose(worker, NO_FINAL, started=STATE.started, now=time.time(), say=_say)


def _request(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    context = context or {}
    us = context.get("us")
    STATE.on_request(
        request_type,
        name,
        int(us if us is not None else response_time * 1e3),
        exception,
        node=context.get("node") or "",
        traffic_class=context.get("class") or "",
        arrival=bool(context.get("arrival")),
    )


def _report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data["maildrill"] = STATE.report().model_dump(mode="json")  # msgpack carries JSON types


def _worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if "maildrill" in data:
        STATE.absorb(client_id, WorkerReport.model_validate(data["maildrill"]))


def _test_start(environment: Environment, **_: Any) -> None:
    if STATE.plan is None:
        _adopt_master_plan(environment)
    plan = STATE.plan
    assert plan is not None
    STATE.started = time.time()
    STATE.send_until = STATE.started + plan.duration_s
    if STATE.is_worker:
        Roster.hello(environment.runner)
        return
    from maildrill.load.watch import start_watchers

    if "read" in plan.roles and plan.scenario == "full_chain":
        start_watchers(STATE)
    gevent.spawn(_supervise, environment)


def _adopt_master_plan(environment: Environment) -> None:
    """A remote worker takes the master's plan, or ends at once with one line."""
    text = getattr(environment.parsed_options, PLAN_OPTION, "") or ""
    try:
        STATE.plan = adopt_plan(text, os.environ[WORKER_TARGET_ENV])
    except MaildrillError as exc:
        # raising here would only log a traceback and leave the worker connected, idle
        print(f"{WORKER_ERROR}{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(exc.exit_code)


def _supervise(environment: Environment) -> None:
    """Progress lines, and the end of the run once the chain is accounted for."""
    plan = STATE.plan
    assert plan is not None
    last_progress = time.time()
    chain = plan.scenario == "full_chain"
    quiet_since = 0.0  # when the last transaction ended: no copy was accepted after it
    while True:
        gevent.sleep(0.25)
        now = time.time()
        STATE.sample_gauges()
        STATE.intervals.pack(before=int(now) - PACK_AFTER_S)
        ROSTER.look(environment.runner, started=STATE.started, now=now, say=_say)
        for worker in ROSTER.lost:
            STATE.worker_in_flight.pop(worker, None)  # a lost worker finishes nothing
        if now - last_progress >= plan.progress_every_s:
            last_progress = now
            _progress(now)
        if now < STATE.send_until:
            continue
        in_flight = STATE.in_flight + sum(STATE.worker_in_flight.values())
        # workers' in-flight counts are up to a second old: their final reports settle it
        settled = now >= STATE.send_until + 0.2
        if not (settled and in_flight == 0):
            quiet_since = 0.0
        elif not chain:
            break
        else:
            quiet_since = quiet_since or now
            # every copy seen, and every mailbox listed once more since: a stray copy
            # (misdelivered, duplicated) that arrived with the last ones is counted too
            if STATE.ledger.unseen() == 0 and STATE.ledger.looked_since(quiet_since):
                break
        if now >= STATE.send_until + settle_s(plan):
            break
    _collect_final_reports(environment)
    ROSTER.close()
    STATE.complete = True
    _progress(time.time())
    runner = environment.runner
    if runner is not None:
        runner.quit()


def _progress(now: float) -> None:
    plan = STATE.plan
    assert plan is not None
    acc = STATE.ledger.accounting(final=False)
    elapsed = max(0.001, now - STATE.started)
    requests, failures = sum(STATE.arrivals.values()), STATE.arrivals["failed"]
    line = (
        f"t={elapsed:5.1f}s requests={requests} failures={failures} "
        f"sent={acc.sent} accepted={acc.accepted} delivered={acc.delivered} "
        f"rate={acc.accepted / min(elapsed, plan.duration_s):.1f}/s"
    )
    _say(line)


def _say(line: str) -> None:
    print(PROGRESS_PREFIX + line, flush=True)


def _quit(**_: Any) -> None:
    if STATE.is_worker and STATE.plan is not None:
        STATE.report()  # what is left unreported joins the totals (the master has it all)
        requests, failures = STATE.reported
        print(
            f"{PROGRESS_PREFIX}worker done: {requests} protocol steps, {failures} failed",
            flush=True,
        )
    if STATE.is_worker or STATE.written or STATE.plan is None or not STATE.plan.out:
        return
    STATE.written = True
    out = Path(STATE.plan.out)
    tmp = out.with_suffix(".tmp")
    raw = STATE.raw(final=STATE.complete)
    raw = raw.model_copy(update={"workers_lost": ROSTER.lost_workers()})
    tmp.write_text(raw.model_dump_json(), encoding="utf-8")
    tmp.replace(out)
    sys.stdout.flush()


# registered on import: every scenario imports this module (locust's EventHook is untyped)
_events: Any = events
_events.init_command_line_parser.add_listener(_options)
_events.init.add_listener(_init)
_events.request.add_listener(_request)
_events.report_to_master.add_listener(_report_to_master)
_events.worker_report.add_listener(_worker_report)
_events.test_start.add_listener(_test_start)
_events.quit.add_listener(_quit)
_events.worker_report.add_listener(ROSTER.on_worker_report)
