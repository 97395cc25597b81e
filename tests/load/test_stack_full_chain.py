"""full_chain for 10 s against the good reference stack (real Postfix, Dovecot, milters):
every message accepted over SMTP is seen over IMAP (IDLE) or POP3 (polling), byte-identical,
exactly once (seed S3).

Brought up exactly as tests/stack does; without the Debian packages or root it skips on a
developer machine and fails in CI (CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.load import run_load
from tests.stack.conftest import RunningStack, bring_up

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DURATION_S = 10.0  # some 50 messages through every milter: the proof is the accounting
RATE = 5.0  # the good stack runs every message through SpamAssassin (≈ 14 msg/s, FACTS.md)


@pytest.fixture(scope="module")
def good_stack() -> Iterator[RunningStack]:
    yield from bring_up("good")


@pytest.mark.parametrize("watch", ["imap", "pop3"])
def test_full_chain_accounts_for_every_message(
    good_stack: RunningStack, tmp_path: Path, watch: str
) -> None:
    lines: list[str] = []
    load = run_load(
        good_stack.root / "target.toml",
        "full_chain",
        duration_s=DURATION_S,
        rate=RATE,
        users=10,  # SpamAssassin takes ~0.3-1 s a message on a busy box: room to keep pace
        out_dir=tmp_path,
        watch=watch,
        progress=lines.append,
    )
    acc = load.accounting
    evidence = f"{acc}; errors {load.errors}; progress {lines[-3:]}"
    assert acc is not None and load.delivery is not None, evidence
    # the point is the accounting, not the rate: a shared 2-core box may drop arrivals
    # (reported as schedule:dropped), but 10 s of real traffic must have gone through
    assert acc.accepted >= 0.3 * DURATION_S * RATE, evidence
    assert acc.sent == acc.accepted and not acc.rejected, evidence
    assert acc.delivered == acc.accepted == load.delivery.count, evidence
    assert (acc.lost, acc.duplicated, acc.corrupted, acc.pending) == (0, 0, 0, 0), evidence
    assert not load.interrupted and load.slo.checks["unaccounted_messages"].met, evidence
    phases = {(p.request_type, p.name) for p in load.phases}
    assert {("smtp", "data"), ("delivery", "message")} <= phases, phases
    assert load.watch == watch
    if watch == "imap":  # the IDLE sessions stay open: open at every second's start
        assert ("imaps", "idle") in phases, phases
        assert max(r.gauges.get("imap.connections", 0) for r in load.timeline) >= 1
    else:  # the stack's pop3s: one session per look, each message retrieved and deleted
        assert {("pop3s", "uidl"), ("pop3s", "retr"), ("pop3s", "dele")} <= phases, phases
        retr = next(p for p in load.phases if p.request_type == "pop3s" and p.name == "retr")
        assert retr.count == acc.delivered and not retr.failures, evidence
