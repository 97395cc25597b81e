"""What one Locust process measured, how a worker ships it, and how the master adds it up.

Every request event goes through :meth:`State.on_request`: counts, whole-run histograms
(:class:`~maildrill.load.hdr.Recorder`), per-second histograms
(:class:`~maildrill.load.interval.Intervals`), per-second counters and, for whole
transactions, the per-node (S4) and per-traffic-class (S8) histograms. The run's own
figures are of *arrivals* (the paced transactions and sessions, whose events say so), not of
protocol steps: ``arrivals`` counts them ``ok`` or ``failed``, and so do the per-second
``requests``, ``failures`` and ``achieved_rps``. An arrival the schedule had to skip
(:meth:`State.arrival_dropped`) is a failed one whose wait so far is its latency. A worker
empties everything into each :meth:`State.report` (a
:class:`~maildrill.load.figures.WorkerReport`); the master :meth:`State.absorb`\\ s it.
Histograms travel encoded and are added bucket by bucket, so N workers report exactly what
one process would::

    master, worker = State(), State(worker=True)
    worker.on_request("smtp", "data", 1234)
    master.absorb("w1", worker.report())
    master.raw(final=True).phases             # as if master had recorded the event itself

Each Locust process has one State, made by :mod:`maildrill.load.listeners` when Locust
initialises and attached to its :class:`~locust.env.Environment`; users and listeners reach
it through the environment they are given (:func:`state_of`), so no module holds a run's
state::

    state = state_of(self.environment)      # in a User
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from maildrill.clients.events import UNFINISHED, Gauge, classify
from maildrill.errors import ConfigError
from maildrill.load.figures import Arrivals, RawFigures, RawPhase, SentRecord, WorkerReport
from maildrill.load.hdr import CLASS_PREFIX, DELIVERY, NODE_PREFIX, Recorder
from maildrill.load.interval import Intervals
from maildrill.load.ledger import Ledger
from maildrill.load.plan import LoadPlan
from maildrill.load.roster import Roster
from maildrill.results import PhasePercentiles, TimelineRow

if TYPE_CHECKING:  # importing locust monkey-patches the process; the CLI must not
    from locust.env import Environment

__all__ = [
    "DELIVERY",
    "END_LAG_S",
    "IMAP_CONNECTIONS",
    "POP3_CONNECTIONS",
    "WHOLE",
    "State",
    "attach",
    "sending_midpoint",
    "settle_s",
    "state_of",
    "timeline_rows",
]

WHOLE = ("transaction", "session")  # the event names that cover a whole exchange
IMAP_CONNECTIONS = "imap.connections"
POP3_CONNECTIONS = "pop3.connections"
# per-second counters: a timeline row's own counts by its field's name, and a family's
# members as "family:member"
ERRORS = "errors:"  # failed arrivals by reply code or error kind ("errors:421")
DROPPED = "dropped:"  # skipped arrivals by arrival type ("dropped:smtp.transaction")
# an arrival due just before sending ends may wake a moment after it (gevent's scheduling);
# it still starts within this lag, rather than be counted as not served on a healthy run
END_LAG_S = 0.25
_ATTRIBUTE = "maildrill_state"  # where the State sits on Locust's Environment


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
        # connections open at the start of each second, by gauge name (seed S22): the
        # clients of this process's users and watchers count theirs into these
        self.gauge_sources = (
            gauges
            if gauges is not None
            else {IMAP_CONNECTIONS: Gauge(clock), POP3_CONNECTIONS: Gauge(clock)}
        )
        self.gauges: dict[int, dict[str, int]] = {}  # this process's levels
        self.worker_gauges: dict[str, dict[int, dict[str, int]]] = {}
        self._gauges_seen: set[str] = set()
        self.ledger = Ledger(on_delivery=self._delivered)
        self.outbox: list[SentRecord] = []  # worker: sent records not yet reported
        self.in_flight = 0
        self.worker_in_flight: dict[str, int] = {}
        self.final_reports: set[str] = set()  # master: workers whose last report is in
        self.roster = Roster()  # master: the workers, and those lost
        self.user_numbers = itertools.count()  # each user of this process its own number
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
                self.tick(ERRORS + code, second=second)
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
        self.tick(ERRORS + "dropped", second=second)
        self.tick(f"{DROPPED}{request_type}.{name}", second=second)
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
        record = SentRecord(message_id, digest, accepted_at, accepted, refused)
        if self.is_worker:
            self.outbox.append(record)
        else:
            self._ledger_sent(record)

    def _ledger_sent(self, record: SentRecord) -> None:
        self.ledger.transaction()
        if record.accepted_at is not None and record.accepted:
            self.ledger.accepted(
                record.message_id, record.digest, record.accepted_at, record.accepted
            )
        if record.refused:  # rare on the raw-rate path: no Counter per message
            for kind, copies in Counter(record.refused.values()).items():
                self.ledger.attempt_failed(kind, copies)

    # -- worker -> master --------------------------------------------------------------

    def report(self) -> WorkerReport:
        self.sample_gauges()
        report = WorkerReport(
            hdr=self.recorder.encode(),
            intervals=self.intervals.encode(),
            counts=self.counts,
            failures=self.failures,
            arrivals=Arrivals(ok=self.arrivals["ok"], failed=self.arrivals["failed"]),
            errors=self.errors,
            timeline=self.timeline,
            gauges=self.gauges,
            sent=self.outbox,
            in_flight=self.in_flight,
            late=self.late,
            dropped=self.dropped,
        )
        self.recorder.reset()
        self.intervals.reset()
        mine = (NODE_PREFIX, CLASS_PREFIX)  # breakdowns of the same requests
        self.reported[0] += sum(v for k, v in self.counts.items() if not k.startswith(mine))
        self.reported[1] += sum(v for k, v in self.failures.items() if not k.startswith(mine))
        self.counts, self.failures, self.errors = Counter(), Counter(), Counter()
        self.arrivals = Counter()
        self.timeline, self.gauges, self.outbox, self.late, self.dropped = {}, {}, [], 0, 0
        return report

    def absorb(self, client_id: str, report: WorkerReport) -> None:
        self.recorder.merge(report.hdr)
        self.intervals.merge(report.intervals)
        self.counts.update(report.counts)
        self.failures.update(report.failures)
        self.arrivals.update(ok=report.arrivals.ok, failed=report.arrivals.failed)
        self.errors.update(report.errors)
        for second, values in report.timeline.items():
            self.timeline.setdefault(second, Counter()).update(values)
        mine = self.worker_gauges.setdefault(client_id, {})
        for second, levels in report.gauges.items():
            mine.setdefault(second, {}).update(levels)  # each second's level comes once
        for record in report.sent:
            self._ledger_sent(record)
        self.worker_in_flight[client_id] = report.in_flight
        self.late += report.late
        self.dropped += report.dropped

    # -- output ------------------------------------------------------------------------

    def raw(self, *, final: bool) -> RawFigures:
        """The figures, written as JSON and read back by :mod:`maildrill.load.runner`."""
        self.sample_gauges()
        phases = []
        for key in sorted(set(self.counts) | set(self.failures)):
            rt, _, name = key.partition("\t")
            phases.append(
                RawPhase(
                    request_type=rt,
                    name=name,
                    count=self.counts[key],
                    failures=self.failures[key],
                    histogram=self.recorder.encoded(rt, name),
                )
            )
        delivery = self.ledger.delivery
        blob = delivery.encode().decode("ascii") if delivery.get_total_count() else ""
        if blob:  # full resolution, so the report's delivery CDF is exact
            count = int(delivery.get_total_count())
            rt, name = DELIVERY
            phases.append(
                RawPhase(request_type=rt, name=name, count=count, failures=0, histogram=blob)
            )
        return RawFigures(
            started=self.started,
            ended=self.clock(),
            phases=phases,
            errors=self.errors,
            arrivals=Arrivals(ok=self.arrivals["ok"], failed=self.arrivals["failed"]),
            timeline=timeline_rows(self, final=final),
            intervals=self.intervals.encode(),
            accounting=self.ledger.accounting(final=final),
            delivery=blob,
            unmatched_sightings=len(self.ledger.orphans),
            late=self.late,
            dropped=self.dropped,
            complete=self.complete,
            workers_lost=self.roster.lost_workers(),
        )


def attach(environment: Environment, state: State) -> State:
    """Hand ``state`` to Locust's ``environment``: the init listener does, once a process."""
    setattr(environment, _ATTRIBUTE, state)
    state.environment = environment
    return state


def state_of(environment: Environment) -> State:
    """The State of the Locust process ``environment`` belongs to."""
    state = getattr(environment, _ATTRIBUTE, None)
    if not isinstance(state, State):
        raise ConfigError(
            "this locustfile uses maildrill's users without maildrill's listeners: "
            "add 'import maildrill.load.listeners' to it"
        )
    return state


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


def timeline_rows(state: State, *, final: bool = False) -> list[TimelineRow]:
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
        counts: dict[str, int] = {}
        families: dict[str, dict[str, int]] = {ERRORS: {}, DROPPED: {}}
        for key, n in state.timeline.get(second, {}).items():
            family, colon, member = key.partition(":")
            if colon:
                families[family + colon][member] = n
            else:
                counts[key] = n
        offered = None
        if plan is not None and state.started:
            mid = sending_midpoint(second, state.started, plan.duration_s)
            offered = round(plan.rate_at(mid), 3) if mid is not None else 0.0
        latency = {}
        recorder = state.intervals.at(second)
        for rt, name in recorder.recorded():
            hist = recorder.histograms[(rt, name)]
            p50, p90, p99 = (float(hist.get_value_at_percentile(p)) for p in (50.0, 90.0, 99.0))
            latency[f"{rt}.{name}"] = PhasePercentiles(p50_us=p50, p90_us=p90, p99_us=p99)
        achieved = counts.get("achieved_rps")
        rows.append(
            TimelineRow(
                t=second - start,
                offered_rps=offered,
                requests=counts.get("requests"),
                achieved_rps=None if achieved is None else float(achieved),
                failures=counts.get("failures"),
                accepted=counts.get("accepted"),
                delivered=delivered.get(second) or None,
                unaccounted=unaccounted.get(second) or None,
                errors=families[ERRORS],
                dropped=families[DROPPED],
                latency=latency,
                gauges=gauges.get(second, {}),
            )
        )
    return rows
