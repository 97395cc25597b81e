"""The capacity figure: each step judged on its own histograms, the highest holding one wins."""

from __future__ import annotations

from maildrill.errors import PhaseError
from maildrill.load.state import State
from maildrill.load.steps import capacity, judge_steps
from maildrill.target import SLO
from tests.load.test_state import T0, Clock, plan

SLO_100MS = SLO(smtp_p99_ms=100)


def run(latency_ms: dict[int, float], *, carried: float = 1.0, errors: int = 0) -> State:
    """A step run of 8 s at 40/s (10, 20, 30, 40/s): ``latency_ms`` per step, ``carried``
    the fraction of the offered rate the server achieved."""
    clock = Clock()
    state = State(clock=clock)
    state.plan = plan(shape="step")
    state.started = T0
    for second in range(8):
        step = second // 2
        n = int((step + 1) * 10 * carried)
        for i in range(n):
            clock.now = T0 + second + i / max(1, n)
            error = PhaseError("421") if i < errors else None
            us = int(latency_ms[step] * 1000)
            state.on_request("smtp", "transaction", us, error, arrival=True)
    return state


def test_capacity_is_the_highest_step_meeting_the_slo() -> None:
    state = run({0: 10, 1: 20, 2: 60, 3: 400})
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)  # type: ignore[arg-type]
    assert [s.rate for s in steps] == [10, 20, 30, 40]
    assert [s.slo.met for s in steps] == [True, True, True, False]
    assert steps[3].slo.checks["smtp_p99_ms"].measured == 400.127  # that step's own histogram
    assert steps[0].achieved_rps == 10
    assert capacity(steps) == 30


def test_a_step_the_server_did_not_carry_does_not_count() -> None:
    state = run({0: 10, 1: 10, 2: 10, 3: 10}, carried=0.5)
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)  # type: ignore[arg-type]
    assert not steps[0].slo.met and steps[0].slo.checks["achieved_rps_min"].measured == 5
    assert capacity(steps) is None


def test_errors_count_against_their_own_step() -> None:
    state = run({0: 10, 1: 10, 2: 10, 3: 10}, errors=1)  # 1 failure a second: 10 % at 10/s
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)  # type: ignore[arg-type]
    assert steps[0].slo.checks["error_rate_pct"].measured == 10.0
    assert capacity(steps) is None


def test_other_shapes_have_no_steps() -> None:
    state = run({0: 10, 1: 10, 2: 10, 3: 10})
    state.plan = plan(shape="constant")
    assert judge_steps(state.raw(final=True), state.plan, SLO_100MS) == []


def test_a_step_that_lost_messages_misses_its_slo() -> None:
    """Seed S3 per step: three messages accepted in the second step are never seen. That
    step misses its SLO (whatever its latencies), the steps around it do not."""
    state = run({0: 10, 1: 10, 2: 10, 3: 10})
    state.plan = plan(shape="step", scenario="full_chain")
    for second in range(8):
        for i in range(4):
            message_id = f"<{second}.{i}@x>"
            state.ledger.accepted(message_id, "h", accepted_at=T0 + second + 0.1)
            if not (second == 3 and i < 3):
                state.ledger.sighting(message_id, "h", seen_at=T0 + second + 0.5)
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)
    assert [s.slo.checks["unaccounted_messages"].measured for s in steps] == [0, 3, 0, 0]
    assert [s.slo.met for s in steps] == [True, False, True, True]
    assert capacity(steps) == 10
    # before the grace period is over the unseen messages are pending, not lost
    pending = judge_steps(state.raw(final=False), state.plan, SLO_100MS)
    assert all(s.slo.met for s in pending)


def test_a_step_whose_arrivals_were_skipped_misses_its_slo() -> None:
    """A 3 s stall in the third step: its users skip the arrivals they cannot start. Those
    are the step's failures and their waits its latency, so the step misses both SLOs even
    though every transaction it did serve was fast."""
    state = run({0: 10, 1: 10, 2: 10, 3: 10})
    clock = state.clock
    assert isinstance(clock, Clock)
    for second in (4, 5):
        for i in range(30):
            clock.now = T0 + second + i / 30
            state.arrival_dropped("smtp", "transaction", 3_000_000 - i * 100_000)
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)
    third = steps[2].slo
    assert third.checks["smtp_p99_ms"].met is False and third.checks["smtp_p99_ms"].measured > 2_000
    assert third.checks["error_rate_pct"].measured == 50.0  # 60 of 120 arrivals not served
    assert [s.slo.met for s in steps] == [True, True, False, True]
    assert capacity(steps) == 20
