"""The SLO verdict judges only what was measured, and fails on any unaccounted message."""

from __future__ import annotations

from datetime import UTC, datetime

from maildrill.load.slo import evaluate
from maildrill.results import Accounting, LatencySummary, LoadResult, PhaseStats, SloCheck
from maildrill.target import SLO


def lat(p99_us: int) -> LatencySummary:
    return LatencySummary(
        count=10, min_us=1, mean_us=1.0, p50_us=1, p90_us=1, p99_us=p99_us, p999_us=p99_us,
        max_us=p99_us,
    )  # fmt: skip


def run(smtp_p99_us: int, *, lost: int = 0, failures: int = 0, chain: bool = True) -> LoadResult:
    now = datetime.now(UTC)
    return LoadResult(
        scenario="full_chain" if chain else "smtp_inbound",
        started=now,
        ended=now,
        duration_s=1.0,
        requests=100,
        failures=failures,
        phases=[
            PhaseStats(
                request_type="smtp",
                name="transaction",
                count=10,
                failures=0,
                latency=lat(smtp_p99_us),
            ),
            PhaseStats(
                request_type="imaps", name="idle", count=10, failures=0, latency=lat(9_000_000)
            ),  # IDLE waits by design: never judged
        ],
        delivery=lat(2_000_000) if chain else None,
        accounting=Accounting(sent=10, accepted=10, delivered=10 - lost, lost=lost),
    )


def test_met_and_missed() -> None:
    slo = SLO(smtp_p99_ms=500, delivery_p99_s=5, error_rate_pct=1)
    ok = evaluate(run(400_000), slo)
    assert ok.met is True
    assert ok.checks["smtp_p99_ms"] == SloCheck(limit=500, measured=400.0, met=True)
    assert "imap_p99_ms" not in ok.checks  # idle is not a command
    assert evaluate(run(600_000), slo).met is False
    assert evaluate(run(400_000, failures=2), slo).checks["error_rate_pct"].met is False


def test_a_lost_message_misses_the_slo() -> None:
    verdict = evaluate(run(1_000, lost=1), SLO())
    assert verdict.met is False
    assert verdict.checks["unaccounted_messages"].measured == 1


def test_only_measured_figures_are_judged() -> None:
    verdict = evaluate(run(1_000, chain=False), SLO())
    assert "delivery_p99_s" not in verdict.checks and "unaccounted_messages" not in verdict.checks


def test_a_latency_never_once_achieved_is_missed_not_met() -> None:
    """Every transaction reset: nothing was recorded, so p99 reads 0 ms, which must not pass
    a 1000 ms limit; the rate of failed transactions is 100 %, not the share of steps."""
    now = datetime.now(UTC)
    nothing = LatencySummary(
        count=0, min_us=0, mean_us=0.0, p50_us=0, p90_us=0, p99_us=0, p999_us=0, max_us=0
    )
    failed = [
        PhaseStats(request_type=rt, name=name, count=199, failures=199, latency=nothing)
        for rt, name in (("smtp", "transaction"), ("imap", "login"))
    ]
    load = LoadResult(
        scenario="smtp_inbound",
        started=now,
        ended=now,
        duration_s=10.0,
        requests=199,
        failures=199,
        phases=failed,
    )
    verdict = evaluate(load, SLO(smtp_p99_ms=1000, imap_p99_ms=1000))
    assert verdict.met is False
    assert verdict.checks["smtp_p99_ms"] == SloCheck(
        limit=1000, measured=0.0, met=False, note="no successful SMTP transaction"
    )
    assert verdict.checks["imap_p99_ms"].met is False
    assert verdict.checks["error_rate_pct"].measured == 100.0
