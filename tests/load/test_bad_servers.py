"""Misbehaving servers: the run ends on time, each fault is counted by kind, nothing hangs.

And a well-behaved counting sink, to hold the figures of a two-process run against what
the server actually received (the workers' last partial second must not go missing).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maildrill.errors import ConfigError
from maildrill.load import run_load
from maildrill.results import LoadResult
from tests.load.servers import smtp_server, write_target

pytestmark = pytest.mark.slow

DURATION_S, TIMEOUT_S = 2.0, 1.0
# Locust's start-up and shutdown on a busy 2-core box; the run itself is bounded by the plan
OVERHEAD_S = 20.0

# behaviour -> the one error kind it must produce (RFC 5321 §4.2: replies start with a code)
FAULTS = {
    "hang_after_banner": "timeout",
    "reset_in_data": "reset",
    "garbage": "protocol",
    "megabyte_line": "protocol",  # a 1 MB reply line: refused by the client, not buffered
}


def _run(behaviour: str, folder: Path) -> tuple[LoadResult, float, int]:
    with smtp_server(behaviour) as server:
        target = write_target(folder, server.port)
        t0 = time.monotonic()
        load = run_load(
            target,
            "smtp_inbound",
            duration_s=DURATION_S,
            rate=10,
            timeout_s=TIMEOUT_S,
            out_dir=folder / "out",
        )
        return load, time.monotonic() - t0, server.connections


def test_each_fault_is_counted_by_kind_and_the_run_ends_on_time(tmp_path: Path) -> None:
    with ThreadPoolExecutor(len(FAULTS)) as pool:  # one Locust subprocess each, at once
        runs = dict(zip(FAULTS, pool.map(lambda b: _run(b, tmp_path / b), FAULTS), strict=True))
    for behaviour, kind in FAULTS.items():
        load, wall, connections = runs[behaviour]
        evidence = f"{behaviour}: errors {load.errors}, accounting {load.accounting}"
        assert wall < DURATION_S + TIMEOUT_S + OVERHEAD_S, evidence
        assert not load.interrupted and load.duration_s < DURATION_S + 3 * TIMEOUT_S, evidence
        assert load.accounting is not None and connections >= 1, evidence
        acc = load.accounting
        assert acc.sent >= 5 and acc.accepted == 0, evidence
        assert acc.rejected == {kind: acc.sent}, evidence  # every attempt, this kind only
        failed = {k: v for k, v in load.errors.items() if not k.startswith("schedule:")}
        assert failed == {f"smtp:{kind}": acc.sent}, evidence
        assert load.slo.met is False, evidence


def test_two_processes_report_every_message_the_server_received(tmp_path: Path) -> None:
    """--processes 2 at 150/s: the workers' final partial second reaches the figures."""
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        load = run_load(
            target, "smtp_inbound", duration_s=3, rate=150, out_dir=tmp_path, processes=2
        )
        received = server.messages
    assert load.accounting is not None
    tx = next(p for p in load.phases if p.name == "transaction")
    data = next(p for p in load.phases if p.name == "data")
    assert load.accounting.accepted == received >= 300, (load.accounting, received)
    assert tx.latency.count == data.latency.count == received
    assert sum(r.accepted or 0 for r in load.timeline) == received
    assert sum(r.achieved_rps or 0 for r in load.timeline) == received


def test_two_processes_count_the_timeouts_still_running_when_sending_ends(
    tmp_path: Path,
) -> None:
    """Transactions that time out after the sending period ends are still reported: the
    master waits for each worker's final report instead of quitting on a schedule."""
    with smtp_server("hang_after_banner") as server:
        target = write_target(tmp_path, server.port)
        load = run_load(
            target,
            "smtp_inbound",
            duration_s=DURATION_S,
            rate=20,
            timeout_s=TIMEOUT_S,
            out_dir=tmp_path,
            processes=2,
        )
        attempts = server.connections  # each attempt opens a connection that then hangs
    assert load.accounting is not None
    assert load.accounting.sent == attempts, (load.accounting, attempts)
    assert load.errors.get("smtp:timeout") == attempts, load.errors


def test_a_scenario_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    """Users that crash before any request (no password for the accounts) are an error
    naming the field, not a run with empty figures."""
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        (tmp_path / "passwords").unlink()
        text = target.read_text().replace('password_file = "passwords"\n', "")
        target.write_text(text)
        with pytest.raises(ConfigError, match="accounts: give password_env or password_file"):
            run_load(target, "smtp_inbound", duration_s=1, rate=5, out_dir=tmp_path / "out")
