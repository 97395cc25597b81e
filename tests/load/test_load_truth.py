"""The figures stay true when the server misbehaves (issue 10, cases 1, 2 and 8).

Against scripted servers on loopback (:mod:`tests.load.servers`): a greeting trickled one
byte a second is timed out by the transaction's deadline and the run ends on time; a stall
shows in p99 and in the error rate instead of vanishing into a schedule counter; every
arrival of a hanging server is in some count; and the run's error rate and throughput are
of transactions, not protocol steps.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maildrill.load import run_load
from maildrill.results import LoadResult, PhaseStats, read_results
from tests.load.servers import smtp_server, write_target

pytestmark = pytest.mark.slow

USERS = 5  # what the plan draws for these rates (at least 5)
# Locust's start-up and shutdown on a busy 2-core box; the run itself is bounded by the plan
OVERHEAD_S = 20.0
# the plugin looks every 0.25 s and an arrival may start up to 0.25 s after sending ends
SLACK_S = 1.5


def _transaction(load: LoadResult) -> PhaseStats:
    return next(p for p in load.phases if p.name == "transaction")


def _offered(rate: float, duration_s: float) -> int:
    """At least the arrivals a run offers: users join the schedule a moment after it starts
    (Locust spawns them), each at a random point of its first interval."""
    return int(0.95 * rate * duration_s) - USERS


def test_a_trickled_greeting_times_out_and_the_run_ends_on_time(tmp_path: Path) -> None:
    """Case 1: every read gets a byte within --timeout, the greeting takes over a minute.
    The whole transaction's deadline ends it: counted as a timeout, the SLO missed, exit 1,
    and the run over within duration + timeout (no grace: nothing is delivered)."""
    duration, timeout, rate = 3.0, 2.0, 10.0
    with smtp_server("trickle_banner") as server:
        target = write_target(tmp_path, server.port)
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable, "-m", "maildrill", "load", "--target", str(target),
                "--scenario", "smtp_inbound", "--rate", str(rate),
                "--duration", str(duration), "--timeout", str(timeout),
                "--out", str(tmp_path / "out"),
            ],
            capture_output=True, text=True, timeout=duration + timeout + OVERHEAD_S + 30,
        )  # fmt: skip
        wall = time.monotonic() - t0
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None
    evidence = f"exit {proc.returncode}; {proc.stdout[-1500:]}"
    assert proc.returncode == 1, evidence
    assert "SLO MISSED" in proc.stdout, evidence
    assert load.duration_s <= duration + timeout + SLACK_S, evidence
    assert wall < duration + timeout + OVERHEAD_S, evidence
    tx = _transaction(load)
    assert load.errors.get("smtp:timeout", 0) >= USERS, evidence  # each user's attempts
    assert load.requests == tx.count >= _offered(rate, duration), evidence
    assert load.failures == load.requests == tx.failures, evidence
    assert load.errors["smtp:timeout"] + load.errors["schedule:dropped"] == load.requests
    assert load.slo.checks["smtp_p99_ms"].met is False and load.slo.met is False, evidence
    assert load.slo.checks["error_rate_pct"].measured == 100.0, evidence


def test_a_stall_shows_in_p99_and_the_error_rate(tmp_path: Path) -> None:
    """Case 2: the server holds every reply for 3 s from 3 s into a 10 s run at 100/s. Its
    5 users serve 5 stalled transactions (under 1 % of those served) and must skip the
    ~300 arrivals due meanwhile: those are failed arrivals whose waits are in the
    transaction histogram, so p99 shows the stall (30 % of arrivals) and none vanish."""
    duration, rate, stall = 10.0, 100.0, 3.0
    with smtp_server("stall", stall_at_s=3.0, stall_s=stall) as server:
        target = write_target(tmp_path, server.port)
        load = run_load(target, "smtp_inbound", duration_s=duration, rate=rate, out_dir=tmp_path)
        received = server.messages
    tx = _transaction(load)
    dropped = load.errors.get("schedule:dropped", 0)
    evidence = f"errors {load.errors}, {tx.count} transactions, p99 {tx.latency.p99_us} µs"
    assert tx.latency.p99_us >= 0.8 * stall * 1e6, evidence
    assert load.slo.checks["smtp_p99_ms"].met is False, evidence
    assert dropped >= 0.5 * stall * rate, evidence  # the stall's arrivals, not started
    assert load.failures == dropped, evidence  # the server failed none
    assert load.slo.checks["error_rate_pct"].measured >= 20, evidence
    assert load.requests == tx.count == received + dropped >= _offered(rate, duration), evidence
    assert load.not_served == dropped, evidence
    rows = load.timeline  # and second by second, where the stall happened
    assert sum(r.errors.get("dropped", 0) for r in rows) == dropped, evidence


def _fault_run(behaviour: str, folder: Path) -> tuple[LoadResult, int]:
    with smtp_server(behaviour) as server:
        target = write_target(folder, server.port)
        load = run_load(
            target, "smtp_inbound", duration_s=3, rate=20, timeout_s=2, out_dir=folder / "out"
        )
        return load, server.messages


def test_every_arrival_is_counted_and_rates_are_per_transaction(tmp_path: Path) -> None:
    """Case 8 and the hanging server of case 2, at 20/s for 3 s with a 2 s timeout:

    - hang after the greeting: each user's one transaction times out and every other
      arrival it could not start is a skipped one: all of them in the counts;
    - reset in DATA: every transaction fails, so the error rate is 100 % (not the share of
      failed steps) and the latency SLO, never once achieved, is missed (not 0 ms met);
    - a healthy sink: the throughput is the offered rate, not steps per second.
    """
    behaviours = ("hang_after_banner", "reset_in_data", "sink")
    with ThreadPoolExecutor(len(behaviours)) as pool:  # one Locust subprocess each, at once
        loads = pool.map(lambda b: _fault_run(b, tmp_path / b), behaviours)
        runs = dict(zip(behaviours, loads, strict=True))
    offered = _offered(20, 3)

    hang, _ = runs["hang_after_banner"]
    tx = _transaction(hang)
    evidence = f"hang: errors {hang.errors}, {hang.requests} arrivals"
    assert hang.errors.get("smtp:timeout", 0) >= USERS, evidence
    assert hang.requests == tx.count == hang.failures >= offered, evidence
    assert hang.errors["smtp:timeout"] + hang.errors["schedule:dropped"] == hang.requests
    assert hang.not_served == hang.errors["schedule:dropped"], evidence
    assert hang.slo.checks["smtp_p99_ms"].met is False, evidence

    reset, _ = runs["reset_in_data"]
    evidence = f"reset: errors {reset.errors}, slo {reset.slo}"
    assert reset.errors.get("smtp:reset") == reset.requests >= offered, evidence
    assert reset.slo.checks["error_rate_pct"].measured == 100.0, evidence
    assert reset.slo.checks["smtp_p99_ms"].met is False, evidence
    assert reset.slo.checks["smtp_p99_ms"].note == "no successful SMTP transaction", evidence
    assert reset.throughput_rps == 0.0, evidence

    sink, received = runs["sink"]
    evidence = f"sink: {sink.requests} arrivals, {sink.throughput_rps}/s, errors {sink.errors}"
    assert sink.failures == sink.not_served == 0, evidence
    assert sink.requests == _transaction(sink).count == received >= offered, evidence
    assert 0.8 * 20 <= sink.throughput_rps <= 20 * 1.05, evidence
    assert sink.slo.met is True, evidence
