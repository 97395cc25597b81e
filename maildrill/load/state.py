"""What one Locust process measured, how a worker ships it, and how the master adds it up.

Every request event goes through :meth:`State.on_request`: counts, whole-run histograms
(:class:`~maildrill.load.hdr.Recorder`), per-second histograms
(:class:`~maildrill.load.interval.Intervals`), per-second counters and, for whole
transactions, the per-node (S4) and per-traffic-class (S8) histograms. The run's own
figures are of *arrivals* (the paced transactions and sessions, whose events say so), not of
protocol steps: ``arrivals`` counts them ``ok`` or ``failed``, and so do the per-second
``requests``, ``failures`` and ``achieved_rps``. An arrival the schedule had to skip
(:meth:`State.arrival_dropped`) is a failed one whose wait so far is its latency. A worker
empties everything into each :meth:`State.report`; the master :meth:`State.absorb`\\ s it.
Histograms travel encoded and are added bucket by bucket, so N workers report exactly what
one process would::

    master, worker = State(), State(worker=True)
    worker.on_request("smtp", "data", 1234)
    master.absorb("w1", worker.report())
    master.raw(final=True)["phases"]          # as if master had recorded the event itself
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maildrill.clients import imap, pop3
from maildrill.clients.events import UNFINISHED, Gauge, classify
from maildrill.load.hdr import CLASS_PREFIX, DELIVERY, NODE_PREFIX, Recorder
from maildrill.load.interval import Intervals
from maildrill.load.ledger import Ledger
from maildrill.load.plan import LoadPlan

if TYPE_CHECKING:  # importing locust monkey-patches the process; the CLI must not
    from locust.env import Environment

__all__ = [
    "DELIVERY",
    "DROPPED_KEY",
    "END_LAG_S",
    "UNACCOUNTED",
    "WHOLE",
    "State",
    "dropped_key",
    "sending_midpoint",
    "settle_s",
    "timeline_rows",
]

WHOLE = ("transaction", "session")  # the event names that cover a whole exchange
IMAP_CONNECTIONS = "imap.connections"
POP3_CONNECTIONS = "pop3.connections"
UNACCOUNTED = "unaccounted"  # timeline: lost/duplicated/corrupted, by second of acceptance
DROPPED_KEY = "error.dropped"  # timeline: arrivals skipped by the schedule, by second
# an arrival due just before sending ends may wake a moment after it (gevent's scheduling);
# it still starts within this lag, rather than be counted as not served on a healthy run
END_LAG_S = 0.25
PERCENTILES = (("p50_us", 50.0), ("p90_us", 90.0), ("p99_us", 99.0))


class State:
    """Everything one Locust process measured. Workers empty theirs into each report."""

    def __init__(
        self,
        *,
        worker: bool | None = None,
        clock: Callable[[], float] = time.time,
        gauges: dict[str, Gauge] | None = None,
    ):
        self.clock = clock
        self._worker = worker  # None: ask the Locust runner
        self.plan: LoadPlan | None = None
        self.environment: Environment | None = None
        self.recorder = Recorder()
        self.intervals = Intervals()
        self.counts: Counter[str] = Counter()  # "type\tname" -> requests
        self.reported = [0, 0]  # a worker's requests and failures handed to the master so far
        self.failures: Counter[str] = Counter()
        self.arrivals: Counter[str] = Counter()  # "ok" / "failed": transactions and sessions
        self.errors: Counter[str] = Counter()  # "smtp:550", "imap:timeout"
        self.timeline: dict[int, Counter[str]] = {}
        # connections open at the start of each second, by gauge name (seed S22)
        self.gauge_sources = (
            gauges
            if gauges is not None
            else {IMAP_CONNECTIONS: imap.CONNECTIONS, POP3_CONNECTIONS: pop3.CONNECTIONS}
        )
        self.gauges: dict[int, dict[str, int]] = {}  # this process's levels
        self.worker_gauges: dict[str, dict[int, dict[str, int]]] = {}
        self._gauges_seen: set[str] = set()
        self.ledger = Ledger(on_delivery=self._delivered)
        self.outbox: list[list[Any]] = []  # worker: sent records not yet reported
        self.in_flight = 0
        self.worker_in_flight: dict[str, int] = {}
        self.final_reports: set[str] = set()  # master: workers whose last report is in
        self.started = 0.0
        self.send_until = 0.0
        self.late = 0
        self.dropped = 0
        self.complete = False
        self.written = False

    @property
    def is_worker(self) -> bool:
        if self._worker is not None:
            return self._worker
        env = self.environment
        if env is None:
            return False
        from locust.runners import WorkerRunner  # only ever reached inside Locust

        return isinstance(env.runner, WorkerRunner)

    def sending(self) -> bool:
        return self.clock() < self.send_until

    def tick(self, key: str, n: int = 1, *, second: int | None = None) -> None:
        second = int(self.clock()) if second is None else second
        row = self.timeline.get(second)  # not setdefault: it builds a Counter every call
        if row is None:
            row = self.timeline[second] = Counter()
        row[key] += n

    # -- measuring ---------------------------------------------------------------------

    def on_request(
        self,
        request_type: str,
        name: str,
        us: int,
        exception: BaseException | None = None,
        *,
        node: str = "",
        traffic_class: str = "",
        arrival: bool = False,
    ) -> None:
        second = int(self.clock())
        key = f"{request_type}\t{name}"
        self.counts[key] += 1
        whole = name in WHOLE
        code = "" if exception is None else classify(exception)
        # an arrival cut off by the end of the run was never served: like a skipped one, its
        # wait so far is its latency
        if exception is None or (arrival and code == UNFINISHED):
            self.recorder.record(request_type, name, us)
            self.intervals.record(second, request_type, name, us)
        if exception is not None:
            self.failures[key] += 1
            if whole:
                self.errors[f"{request_type}:{code}"] += 1
                self.tick(f"error.{code}", second=second)
        if arrival:
            self._arrival(second, ok=exception is None)
        if not whole:
            return
        for prefix, label in ((NODE_PREFIX, node), (CLASS_PREFIX, traffic_class)):
            if label:
                self.counts[f"{prefix}{request_type}\t{label}"] += 1
                if exception is None:
                    self.recorder.record(prefix + request_type, label, us)
                else:
                    self.failures[f"{prefix}{request_type}\t{label}"] += 1

    def _arrival(self, second: int, *, ok: bool) -> None:
        self.arrivals["ok" if ok else "failed"] += 1
        self.tick("requests", second=second)
        self.tick("achieved_rps" if ok else "failures", second=second)

    def arrival_dropped(
        self, request_type: str, name: str, waited_us: int, *, traffic_class: str = ""
    ) -> None:
        """An arrival its user could not start (busy past its schedule, or the sending
        period over): a failed ``name`` of ``request_type`` whose latency is what it had
        waited so far. It is in the error rate and in the percentiles, not only a count."""
        second = int(self.clock())
        self.dropped += 1
        self.tick(DROPPED_KEY, second=second)
        self.tick(dropped_key(request_type, name), second=second)
        self._arrival(second, ok=False)
        keys = [(request_type, name)]
        if traffic_class:
            keys.append((CLASS_PREFIX + request_type, traffic_class))
        for rt, label in keys:
            self.counts[f"{rt}\t{label}"] += 1
            self.failures[f"{rt}\t{label}"] += 1
            self.recorder.record(rt, label, waited_us)
        self.intervals.record(second, request_type, name, waited_us)

    def _delivered(self, accepted_at: float, us: int) -> None:
        # by the second the message was accepted: a step's deliveries are its own messages
        self.intervals.record(int(accepted_at), *DELIVERY, us)

    def sample_gauges(self) -> None:
        for name, gauge in self.gauge_sources.items():
            levels = gauge.drain()
            if name not in self._gauges_seen and not any(levels.values()) and not gauge.value:
                continue  # a run without IMAP has no IMAP connection samples, not zeros
            self._gauges_seen.add(name)
            for second, value in levels.items():
                self.gauges.setdefault(second, {})[name] = value

    # -- the full chain ----------------------------------------------------------------

    def message_sent(
        self,
        message_id: str,
        digest: str,
        accepted_at: float | None,
        accepted: list[str],
        refused: dict[str, str],
    ) -> None:
        """One SMTP transaction: the copies accepted with the 250 after DATA (none if it
        failed) and the reply code or error kind of every other copy."""
        if accepted_at is not None and accepted:
            self.tick("accepted", len(accepted))
        record = [message_id, digest, accepted_at, accepted, refused]
        if self.is_worker:
            self.outbox.append(record)
        else:
            self._ledger_sent(record)

    def _ledger_sent(self, record: list[Any]) -> None:
        message_id, digest, accepted_at, accepted, refused = record
        self.ledger.transaction()
        if accepted_at is not None and accepted:
            self.ledger.accepted(message_id, digest, accepted_at, accepted)
        if refused:  # rare on the raw-rate path: no Counter per message
            for kind, copies in Counter(refused.values()).items():
                self.ledger.attempt_failed(kind, copies)

    # -- worker -> master --------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        self.sample_gauges()
        data = {
            "hdr": self.recorder.encode(),
            "intervals": self.intervals.encode(),
            "counts": dict(self.counts),
            "failures": dict(self.failures),
            "arrivals": dict(self.arrivals),
            "errors": dict(self.errors),
            "timeline": {str(k): dict(v) for k, v in self.timeline.items()},
            "gauges": {str(k): v for k, v in self.gauges.items()},
            "sent": self.outbox,
            "in_flight": self.in_flight,
            "late": self.late,
            "dropped": self.dropped,
        }
        self.recorder.reset()
        self.intervals.reset()
        mine = (NODE_PREFIX, CLASS_PREFIX)  # breakdowns of the same requests
        self.reported[0] += sum(v for k, v in self.counts.items() if not k.startswith(mine))
        self.reported[1] += sum(v for k, v in self.failures.items() if not k.startswith(mine))
        self.counts, self.failures, self.errors = Counter(), Counter(), Counter()
        self.arrivals = Counter()
        self.timeline, self.gauges, self.outbox, self.late, self.dropped = {}, {}, [], 0, 0
        return data

    def absorb(self, client_id: str, data: dict[str, Any]) -> None:
        self.recorder.merge(data.get("hdr", {}))
        self.intervals.merge(data.get("intervals", {}))
        self.counts.update(data.get("counts", {}))
        self.failures.update(data.get("failures", {}))
        self.arrivals.update(data.get("arrivals", {}))
        self.errors.update(data.get("errors", {}))
        for second, values in data.get("timeline", {}).items():
            self.timeline.setdefault(int(second), Counter()).update(values)
        mine = self.worker_gauges.setdefault(client_id, {})
        for second, values in data.get("gauges", {}).items():
            row = mine.setdefault(int(second), {})
            for key, value in values.items():  # each second's level comes once
                row[key] = int(value)
        for record in data.get("sent", []):
            self._ledger_sent(record)
        self.worker_in_flight[client_id] = int(data.get("in_flight", 0))
        self.late += int(data.get("late", 0))
        self.dropped += int(data.get("dropped", 0))

    # -- output ------------------------------------------------------------------------

    def raw(self, *, final: bool) -> dict[str, Any]:
        """The figures as JSON, read back by :mod:`maildrill.load.runner`."""
        self.sample_gauges()
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
        delivery = self.ledger.delivery
        blob = delivery.encode().decode("ascii") if delivery.get_total_count() else ""
        if blob:  # full resolution, so the report's delivery CDF is exact
            count = int(delivery.get_total_count())
            rt, name = DELIVERY
            phases.append(
                {"request_type": rt, "name": name, "count": count, "failures": 0, "histogram": blob}
            )
        return {
            "started": self.started,
            "ended": self.clock(),
            "phases": phases,
            "errors": dict(self.errors),
            "arrivals": {"ok": self.arrivals["ok"], "failed": self.arrivals["failed"]},
            "timeline": timeline_rows(self, final=final),
            "intervals": self.intervals.encode(),
            "accounting": self.ledger.accounting(final=final).model_dump(),
            "delivery": blob,
            "unmatched_sightings": len(self.ledger.orphans),
            "late": self.late,
            "dropped": self.dropped,
            "complete": self.complete,
        }


def dropped_key(request_type: str, name: str) -> str:
    """The timeline key counting one arrival type's skipped arrivals, second by second."""
    return f"{request_type}.{name}.dropped"


def settle_s(plan: LoadPlan) -> float:
    """How long after sending ends a run may go on: every arrival has its outcome within its
    deadline (``timeout_s``; one may start up to :data:`END_LAG_S` late), then full_chain
    waits ``grace_s`` for delivery."""
    chain = plan.scenario == "full_chain"
    return END_LAG_S + plan.timeout_s + (plan.grace_s if chain else 0.0)


def sending_midpoint(second: int, started: float, duration_s: float) -> float | None:
    """Seconds into the run at the middle of the part of wall-clock ``second`` that lies
    in the sending period, or None if none of it does (a run rarely starts on a second)."""
    lo, hi = max(float(second), started), min(second + 1.0, started + duration_s)
    return (lo + hi) / 2 - started if hi > lo else None


def timeline_rows(state: State, *, final: bool = False) -> list[dict[str, float]]:
    """One row per second: counters, ``offered_rps``, per-phase percentiles, gauges, and
    (full chain) ``delivered`` by second seen, ``unaccounted`` by second accepted."""
    gauges: dict[int, Counter[str]] = {}
    for per_second in [state.gauges, *state.worker_gauges.values()]:
        for second, values in per_second.items():
            # levels at the same instant: the sum is the exact number open then
            gauges.setdefault(second, Counter()).update(values)
    delivered = state.ledger.delivered_per_second
    unaccounted = state.ledger.unaccounted_by_second(final=final)
    seconds = sorted(
        set(state.timeline)
        | set(gauges)
        | set(state.intervals.seconds())
        | set(delivered)
        | set(unaccounted)
    )
    start = int(state.started) if state.started else (seconds[0] if seconds else 0)
    plan = state.plan
    if state.started and seconds and plan is not None:
        # every second of the run has a row, quiet ones too (bounded by the backstop)
        longest = int(plan.duration_s + plan.grace_s + plan.timeout_s) + 60
        last = seconds[-1]
        if final:  # the run ended by itself: a stall at the end of sending shows as zeros
            last = max(last, math.ceil(state.started + plan.duration_s) - 1)
        last = min(last, start + longest)
        seconds = sorted(set(seconds) | set(range(start, last + 1)))
    rows = []
    for second in seconds:
        row: dict[str, float] = {"t": float(second - start)}
        row.update({k: float(v) for k, v in state.timeline.get(second, {}).items()})
        row.update({k: float(v) for k, v in gauges.get(second, {}).items()})
        if plan is not None and state.started:
            mid = sending_midpoint(second, state.started, plan.duration_s)
            row["offered_rps"] = round(plan.rate_at(mid), 3) if mid is not None else 0.0
        recorder = state.intervals.at(second)
        for rt, name in recorder.recorded():
            hist = recorder.histograms[(rt, name)]
            for label, pct in PERCENTILES:
                row[f"{rt}.{name}.{label}"] = float(hist.get_value_at_percentile(pct))
        if delivered.get(second):
            row["delivered"] = float(delivered[second])
        if unaccounted.get(second):
            row[UNACCOUNTED] = float(unaccounted[second])
        rows.append(row)
    return rows
