"""Locust event listeners: HDR recording, exact merge across workers, accounting, output.

Importing this module (every scenario in ``loadtests/`` does) registers the listeners on
``locust.events``. In each process the ``request`` listener records microseconds into a
:class:`~maildrill.load.hdr.Recorder`; workers ship their histograms, error counts, timeline
and sent-message records to the master with ``report_to_master`` every second, and the
master adds them up (``worker_report``). The master (or the single local process) runs the
IMAP watchers, prints progress, stops the run when every accepted message has been seen or
the grace period is over, and writes the raw figures to ``plan.out`` on ``quit``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from locust import events
from locust.env import Environment

from maildrill.clients.events import classify
from maildrill.load.hdr import NODE_PREFIX, Recorder
from maildrill.load.ledger import Ledger
from maildrill.load.plan import LoadPlan, current_plan

__all__ = ["STATE", "State"]

log = logging.getLogger("maildrill.load")

# workers report every second rather than every 3 s, so the master's accounting and the
# end-of-run decision lag less
locust.runners.WORKER_REPORT_INTERVAL = 1.0

PROGRESS_PREFIX = "maildrill: "
WHOLE = ("transaction", "session")  # the event names that cover a whole exchange


class State:
    """Everything one Locust process measured. Workers empty theirs into each report."""

    def __init__(self) -> None:
        self.plan: LoadPlan | None = None
        self.environment: Environment | None = None
        self.recorder = Recorder()
        self.counts: Counter[str] = Counter()  # "type\tname" -> requests
        self.failures: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # "smtp:550", "imap:timeout"
        self.timeline: dict[int, Counter[str]] = {}
        self.ledger = Ledger()
        self.outbox: list[list[Any]] = []  # worker: sent records not yet reported
        self.in_flight = 0
        self.worker_in_flight: dict[str, int] = {}
        self.started = 0.0
        self.send_until = 0.0
        self.late = 0
        self.dropped = 0
        self.complete = False
        self.written = False

    @property
    def is_worker(self) -> bool:
        env = self.environment
        return env is not None and isinstance(env.runner, locust.runners.WorkerRunner)

    def sending(self) -> bool:
        return time.time() < self.send_until

    def tick(self, key: str, n: int = 1) -> None:
        self.timeline.setdefault(int(time.time()), Counter())[key] += n

    # -- the full chain ----------------------------------------------------------------

    def message_accepted(self, message_id: str, digest: str, accepted_at: float) -> None:
        self.tick("accepted")
        if self.is_worker:
            self.outbox.append(["ok", message_id, digest, accepted_at])
        else:
            self.ledger.accepted(message_id, digest, accepted_at)

    def message_failed(self, kind: str) -> None:
        if self.is_worker:
            self.outbox.append(["fail", kind])
        else:
            self.ledger.attempt_failed(kind)

    # -- worker -> master --------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        data = {
            "hdr": self.recorder.encode(),
            "counts": dict(self.counts),
            "failures": dict(self.failures),
            "errors": dict(self.errors),
            "timeline": {str(k): dict(v) for k, v in self.timeline.items()},
            "sent": self.outbox,
            "in_flight": self.in_flight,
            "late": self.late,
            "dropped": self.dropped,
        }
        self.recorder.reset()
        self.counts, self.failures, self.errors = Counter(), Counter(), Counter()
        self.timeline, self.outbox, self.late, self.dropped = {}, [], 0, 0
        return data

    def absorb(self, client_id: str, data: dict[str, Any]) -> None:
        self.recorder.merge(data.get("hdr", {}))
        self.counts.update(data.get("counts", {}))
        self.failures.update(data.get("failures", {}))
        self.errors.update(data.get("errors", {}))
        for second, values in data.get("timeline", {}).items():
            self.timeline.setdefault(int(second), Counter()).update(values)
        for record in data.get("sent", []):
            if record[0] == "ok":
                self.ledger.accepted(record[1], record[2], record[3])
            else:
                self.ledger.attempt_failed(record[1])
        self.worker_in_flight[client_id] = int(data.get("in_flight", 0))
        self.late += int(data.get("late", 0))
        self.dropped += int(data.get("dropped", 0))

    # -- output ------------------------------------------------------------------------

    def raw(self, *, final: bool) -> dict[str, Any]:
        """The figures as JSON, read back by :mod:`maildrill.load.runner`."""
        phases = []
        for key in sorted(set(self.counts) | set(self.failures)):
            rt, _, name = key.partition("\t")
            phases.append(
                {
                    "request_type": rt,
                    "name": name,
                    "count": self.counts[key],
                    "failures": self.failures[key],
                    "histogram": self.recorder.encoded(rt, name),
                }
            )
        start = int(self.started) if self.started else min(self.timeline, default=0)
        timeline = [
            {"t": float(second - start), **{k: float(v) for k, v in values.items()}}
            for second, values in sorted(self.timeline.items())
        ]
        for second, n in self.ledger.delivered_per_second.items():
            for row in timeline:
                if row["t"] == second - start:
                    row["delivered"] = float(n)
        delivery = self.ledger.delivery
        return {
            "started": self.started,
            "ended": time.time(),
            "phases": phases,
            "errors": dict(self.errors),
            "timeline": timeline,
            "accounting": self.ledger.accounting(final=final).model_dump(),
            "delivery": delivery.encode().decode("ascii") if delivery.get_total_count() else "",
            "unmatched_sightings": len(self.ledger.orphans),
            "late": self.late,
            "dropped": self.dropped,
            "complete": self.complete,
        }


STATE = State()


def _options(parser: Any) -> None:
    parser.add_argument(
        "--maildrill-target",
        default="",
        help="target file, when running a maildrill scenario with plain 'locust -f'",
    )


def _init(environment: Environment, **_: Any) -> None:
    STATE.environment = environment
    option = getattr(environment.parsed_options, "maildrill_target", "") or None
    STATE.plan = current_plan(option)


def _request(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    key = f"{request_type}\t{name}"
    STATE.counts[key] += 1
    if exception is None:
        us = (context or {}).get("us")
        STATE.recorder.record(
            request_type, name, int(us if us is not None else response_time * 1e3)
        )
        STATE.tick("requests")
    else:
        STATE.failures[key] += 1
        STATE.tick("requests")
        STATE.tick("failures")
        if name in WHOLE:
            STATE.errors[f"{request_type}:{classify(exception)}"] += 1
    node = (context or {}).get("node")
    if node and name in WHOLE:  # per-node figures (seed S4) for whole transactions
        node_key = f"{NODE_PREFIX}{request_type}\t{node}"
        STATE.counts[node_key] += 1
        if exception is None:
            us = int((context or {}).get("us", response_time * 1e3))
            STATE.recorder.record(NODE_PREFIX + request_type, node, us)
        else:
            STATE.failures[node_key] += 1


def _report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data["maildrill"] = STATE.report()


def _worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if "maildrill" in data:
        STATE.absorb(client_id, data["maildrill"])


def _test_start(environment: Environment, **_: Any) -> None:
    plan = STATE.plan
    assert plan is not None
    STATE.started = time.time()
    STATE.send_until = STATE.started + plan.duration_s
    if STATE.is_worker:
        return
    from maildrill.load.watch import start_watchers

    if "read" in plan.roles and plan.scenario == "full_chain":
        start_watchers(STATE)
    gevent.spawn(_supervise, environment)


def _supervise(environment: Environment) -> None:
    """Progress lines, and the end of the run once the chain is accounted for."""
    plan = STATE.plan
    assert plan is not None
    last_progress = time.time()
    chain = plan.scenario == "full_chain"
    while True:
        gevent.sleep(0.25)
        now = time.time()
        if now - last_progress >= plan.progress_every_s:
            last_progress = now
            _progress(now)
        if now < STATE.send_until:
            continue
        in_flight = STATE.in_flight + sum(STATE.worker_in_flight.values())
        settled = now >= STATE.send_until + (1.5 if STATE.worker_in_flight else 0.2)
        if settled and in_flight == 0 and (not chain or STATE.ledger.unseen() == 0):
            break
        if now >= STATE.send_until + (plan.grace_s if chain else plan.timeout_s):
            break
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
    requests = sum(v for k, v in STATE.counts.items() if not k.startswith(NODE_PREFIX))
    failures = sum(v for k, v in STATE.failures.items() if not k.startswith(NODE_PREFIX))
    line = (
        f"t={elapsed:5.1f}s requests={requests} failures={failures} "
        f"sent={acc.sent} accepted={acc.accepted} delivered={acc.delivered} "
        f"rate={acc.accepted / min(elapsed, plan.duration_s):.1f}/s"
    )
    print(PROGRESS_PREFIX + line, flush=True)


def _quit(**_: Any) -> None:
    if STATE.is_worker or STATE.written or STATE.plan is None or not STATE.plan.out:
        return
    STATE.written = True
    out = Path(STATE.plan.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(STATE.raw(final=STATE.complete)), encoding="utf-8")
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
