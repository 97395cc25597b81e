"""Short full_chain runs against the embedded target: every message accounted for, seen
over IMAP IDLE or POP3 polling; and a target that accepts mail but never delivers it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from maildrill.results import SloCheck, read_results
from tests.load.servers import smtp_server

embedded = pytest.importorskip("maildrill.embedded")

pytestmark = pytest.mark.slow


def run_full_chain(
    tmp_path: Path, *options: str, smtp_port: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``smtp_port``: send to that server instead of the embedded target's MX."""
    with embedded.launch(tmp_path / "lab", accounts=5) as target_file:
        if smtp_port is not None:
            text = target_file.read_text(encoding="utf-8")
            mx = re.compile(r'(\[endpoints\.smtp\]\nurl = )"[^"]*"')
            target_file.write_text(mx.sub(rf'\1"smtp://127.0.0.1:{smtp_port}"', text), "utf-8")
        return subprocess.run(
            [
                sys.executable, "-m", "maildrill", "load", "--target", str(target_file),
                "--scenario", "full_chain", "--out", str(tmp_path / "out"), *options,
            ],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip


def test_full_chain_accounts_for_every_message(tmp_path: Path) -> None:
    proc = run_full_chain(tmp_path, "--duration", "4", "--rate", "10")
    out = tmp_path / "out"
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "delivered" in proc.stdout  # progress and summary were printed
    load = read_results(out / "results.json").load
    assert load is not None and load.accounting is not None and load.delivery is not None
    acc = load.accounting
    assert acc.accepted >= 30, acc  # ~40 at 10/s for 4 s
    assert acc.delivered == acc.accepted and acc.sent == acc.accepted
    assert (acc.lost, acc.duplicated, acc.corrupted, acc.pending) == (0, 0, 0, 0)
    assert load.delivery.count == acc.delivered
    assert not load.interrupted and load.duration_s < 4 + 10  # stopped by itself
    phases = {(p.request_type, p.name) for p in load.phases}
    for name in ("connect", "banner", "ehlo", "mail", "rcpt", "data", "transaction"):
        assert ("smtp", name) in phases
    for name in ("connect", "login", "select", "search", "fetch"):
        assert ("imaps", name) in phases
    data = next(p for p in load.phases if p.name == "data")
    assert data.latency.count == acc.accepted and data.histogram
    assert sum(row.accepted or 0 for row in load.timeline) == acc.accepted
    assert json.loads((out / "load-plan.json").read_text())["scenario"] == "full_chain"


def test_sparse_arrivals_are_not_sent_after_the_run_ends(tmp_path: Path) -> None:
    """8 users at 4 msg/s: each sleeps 2 s between arrivals, so at the end of sending most
    are asleep towards one more. None may wake and send a message nobody watches for (it
    would be counted lost: the CI flake this test pins)."""
    proc = run_full_chain(tmp_path, "--duration", "4", "--rate", "4", "--users", "8")
    assert proc.returncode == 0, proc.stderr[-2000:]
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and load.accounting is not None
    acc = load.accounting
    # each user's arrivals are 2 s apart, so at most 2 of them fall within the 4 s
    assert 8 <= acc.sent <= 8 * 2, acc
    assert acc.sent == acc.accepted == acc.delivered, acc
    assert (acc.lost, acc.pending) == (0, 0), acc


def test_pop3_watchers_account_for_every_message(tmp_path: Path) -> None:
    proc = run_full_chain(tmp_path, "--watch", "pop3", "--duration", "4", "--rate", "10")
    out = tmp_path / "out"
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "watchers: pop3, a look every 1 s" in proc.stdout
    load = read_results(out / "results.json").load
    assert load is not None and load.accounting is not None and load.delivery is not None
    acc = load.accounting
    assert acc.accepted >= 30 and acc.sent == acc.accepted == acc.delivered, acc
    assert (acc.lost, acc.duplicated, acc.corrupted, acc.pending) == (0, 0, 0, 0), acc
    assert load.delivery.count == acc.delivered
    assert (load.watch, load.poll_interval_s) == ("pop3", 1.0)
    phases = {(p.request_type, p.name): p for p in load.phases}
    for name in ("connect", "tls", "login", "uidl", "quit", "session"):
        assert ("pop3s", name) in phases, sorted(phases)
    assert not any(rt.startswith("imap") for rt, _ in phases)
    # each message retrieved once and deleted: the mailbox does not grow
    assert phases[("pop3s", "retr")].count == phases[("pop3s", "dele")].count == acc.delivered
    plan = json.loads((out / "load-plan.json").read_text())
    assert (plan["watch"], plan["roles"]["read"], plan["poll_interval_s"]) == ("pop3", "pop3s", 1)


def test_mail_accepted_but_never_delivered_is_lost_and_fails_its_step(tmp_path: Path) -> None:
    """An MX that answers 250 and drops the message (the sink), watched over POP3 on a
    mailbox that never receives: every accepted message is lost, in every step."""
    with smtp_server("sink") as sink:
        proc = run_full_chain(
            tmp_path, "--watch", "pop3", "--poll-interval", "0.5", "--shape", "step",
            "--duration", "8", "--rate", "8", "--users", "2", "--grace", "1",
            # each message is lost only at its deadline: 4 s, not the default 10, after
            # sending ends (a transaction with the sink takes milliseconds)
            "--timeout", "4", smtp_port=sink.port,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]  # the SLO is missed
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and load.accounting is not None
    acc = load.accounting
    assert acc.accepted == sink.messages >= 20, acc
    assert (acc.lost, acc.delivered, acc.pending) == (acc.accepted, 0, 0), acc
    assert load.slo is not None
    assert load.slo.checks["unaccounted_messages"] == SloCheck(
        limit=0, measured=acc.lost, met=False
    )
    assert f"lost {acc.lost}," in proc.stdout
    # each step is held to the messages accepted in it
    assert len(load.steps) == 4 and load.capacity is None, load.steps
    per_step = [s.slo.checks["unaccounted_messages"] for s in load.steps]
    assert all(c.measured >= 1 and not c.met for c in per_step), per_step
    assert sum(c.measured for c in per_step) == acc.lost, per_step
    assert not any(s.slo.met for s in load.steps)
    assert sum(r.unaccounted or 0 for r in load.timeline) == acc.lost
