"""The capacity figure: each step judged on its own histograms, the highest holding one wins."""

from __future__ import annotations

from maildrill.clients.events import PhaseError
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
            state.on_request("smtp", "transaction", int(latency_ms[step] * 1000), error)
    return state


def test_capacity_is_the_highest_step_meeting_the_slo() -> None:
    state = run({0: 10, 1: 20, 2: 60, 3: 400})
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)  # type: ignore[arg-type]
    assert [s.rate for s in steps] == [10, 20, 30, 40]
    assert [s.slo["met"] for s in steps] == [True, True, True, False]
    assert steps[3].slo["smtp_p99_ms"]["measured"] == 400.127  # that step's own histogram
    assert steps[0].achieved_rps == 10
    assert capacity(steps) == 30


def test_a_step_the_server_did_not_carry_does_not_count() -> None:
    state = run({0: 10, 1: 10, 2: 10, 3: 10}, carried=0.5)
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)  # type: ignore[arg-type]
    assert not steps[0].slo["met"] and steps[0].slo["achieved_rps_min"]["measured"] == 5
    assert capacity(steps) is None


def test_errors_count_against_their_own_step() -> None:
    state = run({0: 10, 1: 10, 2: 10, 3: 10}, errors=1)  # 1 failure a second: 10 % at 10/s
    steps = judge_steps(state.raw(final=True), state.plan, SLO_100MS)  # type: ignore[arg-type]
    assert steps[0].slo["error_rate_pct"]["measured"] == 10.0
    assert capacity(steps) is None


def test_other_shapes_have_no_steps() -> None:
    state = run({0: 10, 1: 10, 2: 10, 3: 10})
    state.plan = plan(shape="constant")
    assert judge_steps(state.raw(final=True), state.plan, SLO_100MS) == []
