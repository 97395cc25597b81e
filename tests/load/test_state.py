"""What one process measures and how workers' figures add up at the master.

The merge test feeds the same events once to a single process and once split over two
workers reporting every second (some reports arriving after the master packed that
second), and requires the same histograms bucket for bucket, not just the same counts.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from pydantic import ValidationError

from maildrill.clients.events import Gauge
from maildrill.errors import PhaseError, ReplyError
from maildrill.load.figures import Arrivals, RawFigures, WorkerReport
from maildrill.load.plan import LoadPlan
from maildrill.load.state import State

T0 = 1_700_000_000.0
PHASES = ("connect", "mail", "rcpt", "data", "transaction")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def plan(**changes: Any) -> LoadPlan:
    fields: dict[str, Any] = {
        "target": "",
        "scenario": "smtp_inbound",
        "duration_s": 8.0,
        "users": 4,
        "rate": 40.0,
        "grace_s": 1.0,
        "roles": {"send": "smtp"},
        "nodes": {},
        "max_rate": 100.0,
    }
    return LoadPlan(**(fields | changes))


def new_state(clock: Clock, *, worker: bool = False) -> State:
    # no connection gauges: the single state and the merged ones would sample theirs apart
    state = State(worker=worker, clock=clock, gauges={})
    state.plan = plan(shape="step")
    state.started = T0
    return state


def events(seed: int = 4) -> list[tuple[float, str, int, BaseException | None]]:
    """(time, phase, µs, error) over six seconds: long-tailed latencies, a few failures."""
    rng = random.Random(seed)
    out = []
    for i in range(3000):
        at = T0 + 6 * i / 3000
        phase = PHASES[i % len(PHASES)]
        us = int(rng.lognormvariate(8, 1.2)) + 1
        error: BaseException | None = None
        if i % 97 == 0:
            error = PhaseError("421") if i % 2 else PhaseError("timeout")
        out.append((at, phase, us, error))
    return out


def feed(state: State, clock: Clock, at: float, phase: str, us: int, error: Any) -> None:
    clock.now = at
    state.on_request(
        "smtp",
        phase,
        us,
        error,
        node="127.0.0.1:25",
        traffic_class="inbound",
        arrival=phase == "transaction",  # the paced transaction, not its steps
    )


def histograms(raw: RawFigures) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Every phase's buckets (value, count): equal means an exact merge."""
    out = {}
    for p in raw.phases:
        hist = HdrHistogram.decode(p.histogram) if p.histogram else None
        buckets = (
            []
            if hist is None
            else [
                (b.value_iterated_to, b.count_added_in_this_iter_step)
                for b in hist.get_recorded_iterator()
            ]
        )
        out[(p.request_type, p.name)] = buckets
    return out


def test_two_workers_merge_to_exactly_what_one_process_records() -> None:
    clock = Clock()
    single = new_state(clock)
    master, workers = new_state(clock), [new_state(clock, worker=True) for _ in range(2)]
    next_report = T0 + 1
    for n, (at, phase, us, error) in enumerate(events()):
        feed(single, clock, at, phase, us, error)
        if at >= next_report:  # every second each worker reports, as Locust's do
            for i, w in enumerate(workers):
                report = w.report()
                if i == 1:  # this one arrives after the master packed the past seconds
                    master.intervals.pack(before=int(at) + 1)
                master.absorb(f"w{i}", report)
            next_report += 1
        feed(workers[n % 2], clock, at, phase, us, error)
    for i, w in enumerate(workers):  # the final partial second
        master.absorb(f"w{i}", w.report())

    one, merged = single.raw(final=True), master.raw(final=True)
    assert histograms(merged) == histograms(one)
    assert {(p.request_type, p.name): (p.count, p.failures) for p in merged.phases} == {
        (p.request_type, p.name): (p.count, p.failures) for p in one.phases
    }
    assert merged.timeline == one.timeline  # per-second counts and percentiles
    assert merged.errors == one.errors == {"smtp:421": 3, "smtp:timeout": 3}
    assert merged.arrivals == one.arrivals == Arrivals(ok=594, failed=6)
    assert sum(p.count for p in one.phases if p.request_type == "smtp") == 3000


def test_timeline_has_offered_rate_percentiles_and_errors_per_second() -> None:
    clock = Clock()
    state = new_state(clock)
    for at, phase, us, error in events():
        feed(state, clock, at, phase, us, error)
    rows = state.raw(final=True).timeline
    # events for 6 s of the 8 s planned: the last two seconds are quiet rows, not missing
    assert [r.t for r in rows] == [0, 1, 2, 3, 4, 5, 6, 7]
    # step shape over 8 s at 40/s: four steps of 2 s, 10/s then 20/s, 30/s, 40/s
    assert [r.offered_rps for r in rows] == [10, 10, 20, 20, 30, 30, 40, 40]
    assert rows[6].requests is None and rows[7].requests is None
    first = rows[0]
    data = first.latency["smtp.data"]
    assert data.p50_us <= data.p90_us <= data.p99_us
    failed = first.errors.get("421", 0) + first.errors.get("timeout", 0)
    # counted per arrival (transaction), not per protocol step: 500 events, 100 arrivals
    assert first.requests == 100 and first.achieved_rps == 100 - failed
    assert (first.failures or 0) == failed
    # failed transactions only: a failed phase ends its transaction, which carries the code
    assert sum(r.errors.get("421", 0) for r in rows) == 3
    assert sum(r.errors.get("timeout", 0) for r in rows) == 3


def test_per_class_and_per_node_figures_cover_whole_transactions_only() -> None:
    clock = Clock()
    state = new_state(clock)
    feed(state, clock, T0, "data", 900, None)
    feed(state, clock, T0, "transaction", 1000, None)
    feed(state, clock, T0, "transaction", 2000, PhaseError("reset"))
    phases = {(p.request_type, p.name): p for p in state.raw(final=True).phases}
    assert phases[("class:smtp", "inbound")].count == 2
    assert phases[("class:smtp", "inbound")].failures == 1
    assert phases[("node:smtp", "127.0.0.1:25")].count == 2
    assert ("class:smtp", "data") not in phases


def test_delivery_is_a_full_resolution_phase_and_per_second_by_acceptance() -> None:
    clock = Clock()
    state = new_state(clock)
    state.ledger.accepted("<a@x>", "h", accepted_at=T0 + 0.2)
    state.ledger.sighting("<a@x>", "h", seen_at=T0 + 3.4567)
    raw = state.raw(final=True)
    delivery = next(p for p in raw.phases if p.request_type == "delivery")
    hist = HdrHistogram.decode(delivery.histogram)
    assert delivery.count == 1 and abs(hist.get_max_value() - 3_256_700) < 3_256_700 / 1000
    row = next(r for r in raw.timeline if r.t == 0)
    assert abs(row.latency["delivery.message"].p99_us - 3_256_700) < 3_256_700 / 1000
    assert next(r for r in raw.timeline if r.t == 3).delivered == 1


def test_connections_are_the_exact_level_at_each_second_across_processes() -> None:
    """Each process samples the level at the start of every second; the master adds the
    levels of the same instants. Peaks would add up to 3 + 2 = 5 here, though no more
    than 4 were ever open at once: the sum must be of levels, not peaks."""
    clock = Clock()
    mine, theirs = Gauge(clock), Gauge(clock)
    master = State(clock=clock, gauges={"imap.connections": mine})
    worker = State(worker=True, clock=clock, gauges={"imap.connections": theirs})
    for state in (master, worker):
        state.plan, state.started = plan(), T0
    at = {0.1: (theirs, 3), 0.5: (theirs, -3), 0.6: (mine, 2), 1.2: (theirs, 2), 2.3: (mine, -1)}
    for offset, (gauge, change) in at.items():  # the worker: 3 open in [0.1, 0.5) only
        clock.now = T0 + offset
        for _ in range(abs(change)):
            gauge.up() if change > 0 else gauge.down()
    clock.now = T0 + 1.5
    master.absorb("w1", worker.report())  # a second's level travels in one report only
    clock.now = T0 + 3.5
    master.absorb("w1", worker.report())
    rows = {r.t: r.gauges.get("imap.connections") for r in master.raw(final=True).timeline}
    # at T0+1: 2 of the master's; T0+2: 2 + 2; T0+3: 1 + 2 (the peak of 3 fell in between)
    assert (rows[1], rows[2], rows[3]) == (2, 4, 3), rows


def test_no_connection_samples_without_connections() -> None:
    clock = Clock()
    state = State(clock=clock, gauges={"imap.connections": Gauge(clock)})
    state.plan, state.started = plan(), T0
    clock.now = T0 + 3
    feed(state, clock, T0 + 3, "transaction", 1000, None)
    assert all("imap.connections" not in r.gauges for r in state.raw(final=True).timeline)


def test_reply_codes_and_kinds_name_the_error_series() -> None:
    clock = Clock()
    state = new_state(clock)
    feed(state, clock, T0, "transaction", 10, ReplyError(550, "no"))
    assert state.raw(final=True).timeline[0].errors["550"] == 1


def test_message_records_reach_the_master_copy_by_copy() -> None:
    """A worker's transactions (accepted copies, refused copies) add up at the master as if
    it had sent them itself."""
    clock = Clock()
    master, worker = new_state(clock), new_state(clock, worker=True)
    worker.message_sent("<a>", "h", T0 + 0.1, ["u1@x", "u2@x"], {"u3@x": "550"})
    worker.message_sent("<b>", "h", None, [], {"u1@x": "552", "u2@x": "552"})
    master.message_sent("<c>", "h", T0 + 0.2, ["u1@x"], {})
    master.absorb("w1", worker.report())
    master.ledger.sighting("<a>", "h", seen_at=T0 + 1, recipient="u2@x")
    acc = master.ledger.accounting(final=True)
    assert (acc.messages, acc.sent, acc.accepted, acc.delivered, acc.lost) == (3, 6, 3, 1, 2)
    assert acc.rejected == {"550": 1, "552": 2}
    assert sum(row.accepted or 0 for row in master.raw(final=True).timeline) == 3


def test_a_stall_at_the_end_of_sending_shows_as_quiet_seconds() -> None:
    """The server stops answering after 2 s of an 8 s run: seconds 2-7 still have rows
    (offered, nothing achieved) once the run is over, so the stall is visible."""
    clock = Clock()
    state = new_state(clock)
    for at, phase, us, error in events():
        if at < T0 + 2:
            feed(state, clock, at, phase, us, error)
    rows = state.raw(final=True).timeline
    assert [r.t for r in rows] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert all((r.offered_rps or 0) > 0 for r in rows)
    assert [(r.achieved_rps or 0) > 0 for r in rows] == [True, True] + [False] * 6
    # while the run is still going, nothing is invented past the last event
    assert [r.t for r in state.raw(final=False).timeline] == [0, 1]


def test_a_skipped_arrival_is_a_failure_whose_wait_is_its_latency() -> None:
    """An arrival its user was too busy to start counts where served ones do: in the
    transaction's count, failures and histogram (its wait so far), in the error rate's
    arrivals and in the per-class figures; workers ship it to the master like the rest."""
    clock = Clock()
    master, worker = new_state(clock), new_state(clock, worker=True)
    feed(worker, clock, T0, "transaction", 2_000, None)
    worker.arrival_dropped("smtp", "transaction", 2_500_000, traffic_class="inbound")
    master.absorb("w1", worker.report())
    raw = master.raw(final=True)
    phases = {(p.request_type, p.name): p for p in raw.phases}
    tx = phases[("smtp", "transaction")]
    hist = HdrHistogram.decode(tx.histogram)
    assert (tx.count, tx.failures, hist.get_total_count()) == (2, 1, 2)
    assert abs(hist.get_max_value() - 2_500_000) < 2_500_000 / 1000
    assert phases[("class:smtp", "inbound")].failures == 1
    assert raw.arrivals == Arrivals(ok=1, failed=1) and raw.dropped == 1
    row = raw.timeline[0]
    assert (row.requests, row.failures, row.errors["dropped"]) == (2, 1, 1)
    assert row.dropped["smtp.transaction"] == 1
    assert row.latency["smtp.transaction"].p99_us >= 2_490_000  # the stall, second by second


def test_an_arrival_cut_off_by_the_end_of_the_run_is_counted_with_its_wait() -> None:
    clock = Clock()
    state = new_state(clock)
    cut = PhaseError("unfinished")
    state.on_request("smtp", "transaction", 4_000_000, cut, traffic_class="x", arrival=True)
    state.on_request("imap", "session", 9_000_000, cut)  # a watcher's session: not an arrival
    raw = state.raw(final=True)
    phases = {(p.request_type, p.name): p for p in raw.phases}
    assert raw.arrivals == Arrivals(ok=0, failed=1)
    assert HdrHistogram.decode(phases[("smtp", "transaction")].histogram).get_total_count()
    assert not phases[("imap", "session")].histogram
    assert raw.errors == {"smtp:unfinished": 1, "imap:unfinished": 1}


def _over_locusts_wire(report: WorkerReport) -> Any:
    """A worker report as the master receives it: Locust's own msgpack message."""
    from locust.rpc.protocol import Message

    sent = Message("stats", {"maildrill": report.model_dump(mode="json")}, "w1").serialize()
    return Message.unserialize(sent).data["maildrill"]


def test_a_worker_report_crosses_the_wire_typed_and_adds_up_exactly() -> None:
    """worker.report() -> Locust's msgpack -> validated -> master.absorb(): the master ends
    with what one process recording everything would have, sent records included."""
    clock = Clock()
    single, master, worker = new_state(clock), new_state(clock), new_state(clock, worker=True)
    for state in (single, worker):
        for at, phase, us, error in events()[:500]:
            feed(state, clock, at, phase, us, error)
        state.arrival_dropped("smtp", "transaction", 2_000_000, traffic_class="inbound")
        state.message_sent("<a>", "h", T0 + 0.1, ["u1@x"], {"u2@x": "550"})
    wire = _over_locusts_wire(worker.report())
    master.absorb("w1", WorkerReport.model_validate(wire))
    merged, one = master.raw(final=True), single.raw(final=True)
    assert histograms(merged) == histograms(one)
    assert merged.timeline == one.timeline and merged.arrivals == one.arrivals
    assert merged.accounting == one.accounting and merged.accounting.rejected == {"550": 1}
    assert (merged.dropped, merged.errors) == (one.dropped, one.errors)


def test_a_malformed_worker_report_is_refused_where_it_is_read() -> None:
    clock = Clock()
    worker = new_state(clock, worker=True)
    feed(worker, clock, T0, "transaction", 1000, None)
    wire = _over_locusts_wire(worker.report())
    wire["counts"] = {"smtp\ttransaction": "many"}
    with pytest.raises(ValidationError, match="counts"):
        WorkerReport.model_validate(wire)
    del wire["counts"]
    with pytest.raises(ValidationError, match="counts"):
        WorkerReport.model_validate(wire)


def test_the_raw_figures_read_back_as_written() -> None:
    """What the Locust process writes on quit is what the runner reads."""
    clock = Clock()
    state = new_state(clock)
    for at, phase, us, error in events()[:500]:
        feed(state, clock, at, phase, us, error)
    state.ledger.accepted("<a@x>", "h", accepted_at=T0 + 0.2)
    state.ledger.sighting("<a@x>", "h", seen_at=T0 + 1.5)
    raw = state.raw(final=True)
    assert RawFigures.model_validate_json(raw.model_dump_json()) == raw
    assert raw.timeline[1].delivered == 1 and raw.timeline[0].accepted is None
