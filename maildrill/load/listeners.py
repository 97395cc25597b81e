"""Locust event listeners: HDR recording, exact merge across workers, accounting, output.

Importing this module (every scenario in ``loadtests/`` does) registers two listeners on
``locust.events``: the command-line options, and ``init``. When Locust initialises a
process, ``init`` makes that process's :class:`~maildrill.load.state.State`, attaches it to
the :class:`~locust.env.Environment` (users reach it there) and adds the other listeners to
the environment's events, each bound to it: nothing of a run lives in a module. In each
process the ``request`` listener hands the event to the State; workers ship what they
measured to the master with
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
from functools import partial
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
from maildrill.load.state import State, attach, settle_s, state_of
from maildrill.load.watch import start_watchers

__all__: list[str] = []  # everything here is registered with Locust, nothing is called

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

# before Locust forks its --processes workers, which take the tie from here (a claim on the
# process tree, not run state)
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
    state = attach(environment, State())
    # quitting fires its listeners last-added first: this one must come before the master
    # runner's own, which tells the workers to quit (and let their users finish)
    events_: Any = environment.events  # locust's EventHook is untyped
    events_.quitting.add_listener(_quitting)
    # these events carry no environment: each listener is bound to this process's State
    events_.request.add_listener(partial(_request, state))
    events_.report_to_master.add_listener(partial(_report_to_master, state))
    events_.worker_report.add_listener(partial(_worker_report, state))
    events_.worker_report.add_listener(state.roster.on_worker_report)
    events_.test_start.add_listener(_test_start)
    events_.quit.add_listener(partial(_quit, state))
    option = getattr(environment.parsed_options, "maildrill_target", "") or None
    locustfile = str(getattr(environment.parsed_options, "locustfile", "") or "")
    watch = getattr(environment.parsed_options, "maildrill_watch", "") or None
    runner = environment.runner
    worker = isinstance(runner, locust.runners.WorkerRunner)
    if worker and os.environ.get(WORKER_TARGET_ENV) and not os.environ.get(PLAN_ENV):
        state.plan = None  # a remote worker's comes from the master, see _test_start
    else:
        state.plan = current_plan(option, locustfile, watch)
    if isinstance(runner, locust.runners.WorkerRunner):
        runner.register_message(FINAL_ASK, _on_final_ask, concurrent=True)
        runner.register_message(ABORT, _on_abort)
        lifeline.follow_master(runner, lambda: _on_abort(environment, None))
    elif isinstance(runner, locust.runners.MasterRunner):
        runner.register_message(FINAL_REPORT, _on_final_report)
        runner.register_message(HELLO, state.roster.on_hello)
        if environment.parsed_options is not None and state.plan is not None:
            setattr(environment.parsed_options, PLAN_OPTION, state.plan.to_json())


def _on_final_ask(environment: Environment, msg: Any, **_: Any) -> None:
    """Worker: once sending is over and nothing is in flight (bounded), report for good."""
    state = state_of(environment)
    plan = state.plan
    limit = time.time() + (plan.timeout_s + 2 if plan else 5.0)
    while time.time() < limit and (state.sending() or state.in_flight):
        gevent.sleep(0.05)
    runner = environment.runner
    if runner is not None:
        runner.send_message(FINAL_REPORT, state.report().model_dump(mode="json"))


def _quitting(environment: Environment, **_: Any) -> None:
    """Locust is shutting down: after a normal end nothing is left to stop; on a signal
    the users must stop sending now, not after finishing their tasks."""
    runner = environment.runner
    if isinstance(runner, locust.runners.MasterRunner):
        state_of(environment).roster.close()  # from here on, workers leave when told to
        runner.send_message(ABORT)
    _on_abort(environment, None)


def _on_abort(environment: Environment, msg: Any, **_: Any) -> None:
    state = state_of(environment)
    state.send_until = min(state.send_until, state.clock())
    environment.stop_timeout = 0  # Locust kills the users instead of waiting on them


def _on_final_report(environment: Environment, msg: Any, **_: Any) -> None:
    state = state_of(environment)
    state.absorb(msg.node_id, WorkerReport.model_validate(msg.data))
    state.final_reports.add(msg.node_id)


def _collect_final_reports(environment: Environment, state: State) -> None:
    """Master: ask every worker for its last figures and wait for them (bounded)."""
    runner = environment.runner
    if not isinstance(runner, locust.runners.MasterRunner):
        return
    workers = state.roster.live(set(runner.clients.keys()))
    if not workers:
        return
    runner.send_message(FINAL_ASK)
    plan = state.plan
    limit = time.time() + (plan.timeout_s + 5 if plan else 10.0)
    while time.time() < limit and not workers <= state.final_reports:
        gevent.sleep(0.05)
    for worker in workers - state.final_reports:
        state.roster.lose(worker, NO_FINAL, started=state.started, now=time.time(), say=_say)


def _request(
    state: State,
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    context = context or {}
    us = context.get("us")
    state.on_request(
        request_type,
        name,
        int(us if us is not None else response_time * 1e3),
        exception,
        node=context.get("node") or "",
        traffic_class=context.get("class") or "",
        arrival=bool(context.get("arrival")),
    )


def _report_to_master(state: State, client_id: str, data: dict[str, Any], **_: Any) -> None:
    data["maildrill"] = state.report().model_dump(mode="json")  # msgpack carries JSON types


def _worker_report(state: State, client_id: str, data: dict[str, Any], **_: Any) -> None:
    if "maildrill" in data:
        state.absorb(client_id, WorkerReport.model_validate(data["maildrill"]))


def _test_start(environment: Environment, **_: Any) -> None:
    state = state_of(environment)
    if state.plan is None:
        _adopt_master_plan(environment, state)
    plan = state.plan
    assert plan is not None
    state.started = time.time()
    state.send_until = state.started + plan.duration_s
    if state.is_worker:
        Roster.hello(environment.runner)
        return
    if "read" in plan.roles and plan.scenario == "full_chain":
        start_watchers(environment)
    gevent.spawn(_supervise, environment, state)


def _adopt_master_plan(environment: Environment, state: State) -> None:
    """A remote worker takes the master's plan, or ends at once with one line."""
    text = getattr(environment.parsed_options, PLAN_OPTION, "") or ""
    try:
        state.plan = adopt_plan(text, os.environ[WORKER_TARGET_ENV])
    except MaildrillError as exc:
        # raising here would only log a traceback and leave the worker connected, idle
        print(f"{WORKER_ERROR}{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(exc.exit_code)


def _supervise(environment: Environment, state: State) -> None:
    """Progress lines, and the end of the run once the chain is accounted for."""
    plan = state.plan
    assert plan is not None
    roster = state.roster
    last_progress = time.time()
    chain = plan.scenario == "full_chain"
    quiet_since = 0.0  # when the last transaction ended: no copy was accepted after it
    while True:
        gevent.sleep(0.25)
        now = time.time()
        state.sample_gauges()
        state.intervals.pack(before=int(now) - PACK_AFTER_S)
        roster.look(environment.runner, started=state.started, now=now, say=_say)
        for worker in roster.lost:
            state.worker_in_flight.pop(worker, None)  # a lost worker finishes nothing
        if now - last_progress >= plan.progress_every_s:
            last_progress = now
            _progress(state, now)
        if now < state.send_until:
            continue
        in_flight = state.in_flight + sum(state.worker_in_flight.values())
        # workers' in-flight counts are up to a second old: their final reports settle it
        settled = now >= state.send_until + 0.2
        if not (settled and in_flight == 0):
            quiet_since = 0.0
        elif not chain:
            break
        else:
            quiet_since = quiet_since or now
            # every copy seen, and every mailbox listed once more since: a stray copy
            # (misdelivered, duplicated) that arrived with the last ones is counted too
            if state.ledger.unseen() == 0 and state.ledger.looked_since(quiet_since):
                break
        if now >= state.send_until + settle_s(plan):
            break
    _collect_final_reports(environment, state)
    roster.close()
    state.complete = True
    _progress(state, time.time())
    runner = environment.runner
    if runner is not None:
        runner.quit()


def _progress(state: State, now: float) -> None:
    plan = state.plan
    assert plan is not None
    acc = state.ledger.accounting(final=False)
    elapsed = max(0.001, now - state.started)
    requests, failures = sum(state.arrivals.values()), state.arrivals["failed"]
    line = (
        f"t={elapsed:5.1f}s requests={requests} failures={failures} "
        f"sent={acc.sent} accepted={acc.accepted} delivered={acc.delivered} "
        f"rate={acc.accepted / min(elapsed, plan.duration_s):.1f}/s"
    )
    _say(line)


def _say(line: str) -> None:
    print(PROGRESS_PREFIX + line, flush=True)


def _quit(state: State, **_: Any) -> None:
    if state.is_worker and state.plan is not None:
        state.report()  # what is left unreported joins the totals (the master has it all)
        requests, failures = state.reported
        print(
            f"{PROGRESS_PREFIX}worker done: {requests} protocol steps, {failures} failed",
            flush=True,
        )
    if state.is_worker or state.written or state.plan is None or not state.plan.out:
        return
    state.written = True
    out = Path(state.plan.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(state.raw(final=state.complete).model_dump_json(), encoding="utf-8")
    tmp.replace(out)
    sys.stdout.flush()


# registered on import: every scenario imports this module (locust's EventHook is untyped);
# the rest are added per process by _init, bound to its State
_events: Any = events
_events.init_command_line_parser.add_listener(_options)
_events.init.add_listener(_init)
