"""The capacity figure: each step of a step-shaped run judged against the SLO on its own.

A step's latency figures come from the per-second histograms of the seconds it covers,
added together (exact, not an average of percentiles); its error rate from the per-second
counters, of arrivals (transactions, sessions) as the whole run's. A step *holds* when
:func:`maildrill.load.slo.evaluate` says its SLO is met and it achieved at least
:data:`MIN_ACHIEVED` of the rate it offered (a generator or server that fell behind did not
carry that rate, whatever the latency of what it did send). In a
full-chain run a step in which a message was lost, duplicated or corrupted misses its SLO;
each message counts against the step it was accepted in (the timeline's ``unaccounted``).
The capacity is the rate of the highest step reached with every step below it holding::

    steps = judge_steps(raw, plan, target.slo)     # raw: the run's RawFigures
    capacity(steps)        # 30.0, or None when even the first step misses
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from maildrill.load.figures import RawFigures
from maildrill.load.interval import Intervals
from maildrill.load.plan import LoadPlan
from maildrill.load.slo import evaluate
from maildrill.load.state import DELIVERY, sending_midpoint
from maildrill.results import (
    LoadResult,
    PhaseStats,
    SloCheck,
    SloVerdict,
    StepResult,
    TimelineRow,
)
from maildrill.target import SLO

__all__ = ["MIN_ACHIEVED", "STEPS", "capacity", "judge_steps"]

STEPS = 4  # as LoadPlan.rate_at draws the step shape
MIN_ACHIEVED = 0.9


def judge_steps(raw: RawFigures, plan: LoadPlan, slo: SLO) -> list[StepResult]:
    started = raw.started
    if plan.shape != "step" or not started:
        return []
    intervals = Intervals()
    intervals.merge(raw.intervals)
    base = int(started)
    rows = {row.t + base: row for row in raw.timeline}
    width = plan.duration_s / STEPS
    span = range(base, base + int(plan.duration_s) + 2)
    mids = {s: sending_midpoint(s, started, plan.duration_s) for s in span}
    out = []
    for k in range(STEPS):
        lo, hi = k * width, (k + 1) * width
        seconds = [s for s, mid in mids.items() if mid is not None and lo <= mid < hi]
        out.append(_judge(k, lo, hi, seconds, rows, intervals, plan, slo))
    return out


def _judge(
    k: int,
    lo: float,
    hi: float,
    seconds: list[int],
    rows: dict[int, TimelineRow],
    intervals: Intervals,
    plan: LoadPlan,
    slo: SLO,
) -> StepResult:
    rate = plan.rate_at(lo + 0.001)
    recorder = intervals.window(seconds)

    def total(count: Callable[[TimelineRow], float | None]) -> float:
        return sum(count(rows[s]) or 0 for s in seconds if s in rows)

    def skipped(arrival: str) -> int:
        return int(total(lambda row: row.dropped.get(arrival)))

    # a whole transaction's histogram holds its skipped arrivals' waits too: they are its
    # failures here, so a step that served none of them misses its latency SLO
    phases = [
        PhaseStats(
            request_type=rt,
            name=name,
            count=int(recorder.histograms[(rt, name)].get_total_count()),
            failures=skipped(f"{rt}.{name}"),
            latency=recorder.summary(rt, name),
        )
        for rt, name in recorder.recorded()
        if (rt, name) != DELIVERY
    ]
    delivery = recorder.summary(*DELIVERY) if DELIVERY in recorder.histograms else None
    requests = int(total(lambda row: row.requests))
    failures = int(total(lambda row: row.failures))
    achieved = total(lambda row: row.achieved_rps) / max(1, len(seconds))
    now = datetime.now(UTC)
    step = LoadResult(
        scenario=plan.scenario,
        started=now,
        ended=now,
        duration_s=hi - lo,
        requests=requests,
        failures=failures,
        phases=phases,
        delivery=delivery if delivery is None or delivery.count else None,
    )
    checks = dict(evaluate(step, slo).checks)
    floor = round(MIN_ACHIEVED * rate, 3)
    checks["achieved_rps_min"] = SloCheck(
        limit=floor, measured=round(achieved, 3), met=achieved >= floor
    )
    if plan.scenario == "full_chain":
        # the step's own messages: a loss is judged where it was sent, not at the end
        bad = int(total(lambda row: row.unaccounted))
        checks["unaccounted_messages"] = SloCheck(limit=0, measured=bad, met=bad == 0)
    return StepResult(
        rate=round(rate, 3),
        start_s=round(lo, 3),
        end_s=round(hi, 3),
        achieved_rps=round(achieved, 3),
        requests=requests,
        failures=failures,
        slo=SloVerdict.of(checks),
    )


def capacity(steps: list[StepResult]) -> float | None:
    """The highest step rate with every step up to it meeting the SLO."""
    best = None
    for step in steps:
        if not step.slo.met:
            break
        best = step.rate
    return best
