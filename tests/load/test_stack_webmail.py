"""Webmail load (seed S2) against the good reference stack's real Roundcube (nginx, PHP-FPM,
talking IMAP to its Dovecot and SMTP submission to its Postfix): every phase of a browser
session is measured without an error; with a wrong password every login fails and is
counted as Roundcube's 401.

Brought up exactly as tests/stack does; without the Debian packages or root it skips on a
developer machine and fails in CI (CI=true).
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.load import run_load
from maildrill.stack.layout import Ports
from tests.stack.conftest import RunningStack, bring_up
from tests.stack.test_lifecycle import wait_imap

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DURATION_S, RATE = 6.0, 4.0
PHASES = {"login", "list", "show", "send", "logout", "transaction"}


@pytest.fixture(scope="module")
def good_stack() -> Iterator[RunningStack]:
    yield from bring_up("good")


def _fill_inboxes(stack: RunningStack) -> None:
    """One message in every test account, through the inbound port without milters, so
    each session has a message to open; returns once IMAP shows each of them."""
    token = uuid.uuid4().hex
    accounts = [stack.target.account(n) for n in range(stack.target.accounts.count)]
    with smtplib.SMTP(stack.host, Ports.smtp_raw, timeout=10) as smtp:
        for n, account in enumerate(accounts):
            rcpt = account.address
            smtp.sendmail(
                "load@maildrill.test",
                [rcpt],
                f"Subject: inbox {n} {token}\r\nTo: {rcpt}\r\n\r\nhello\r\n",
            )
    for account in accounts:  # LMTP delivery into Dovecot: polled, at most 15 s each
        wait_imap(stack, account.local, token)


def test_webmail_sessions_measure_every_phase(good_stack: RunningStack, tmp_path: Path) -> None:
    _fill_inboxes(good_stack)
    load = run_load(
        good_stack.root / "target.toml", "webmail", duration_s=DURATION_S, rate=RATE,
        out_dir=tmp_path,
    )  # fmt: skip
    phases = {p.name: p for p in load.phases if p.request_type == "webmail"}
    evidence = f"errors {load.errors}; {[(p.name, p.count, p.failures) for p in load.phases]}"
    assert set(phases) == PHASES, evidence
    # a shared 2-core box may drop arrivals: those are the sessions' only failures (and
    # the run's error rate), each session served had every phase succeed
    dropped = load.errors.get("schedule:dropped", 0)
    assert {k for k in load.errors if not k.startswith("schedule:")} == set(), evidence
    sessions = phases.pop("transaction")
    assert sessions.failures == dropped == load.not_served, evidence
    assert all(p.count >= 1 and p.failures == 0 for p in phases.values()), evidence
    served = sessions.count - sessions.failures
    assert served >= 0.5 * DURATION_S * RATE, evidence  # most of them must have been served
    assert phases["show"].count == served, evidence  # every inbox had a message
    assert load.by_node and load.by_node[0].name.endswith(f":{Ports.webmail}"), load.by_node
    assert load.slo.met is True or dropped, load.slo  # what was not served is a miss


def test_wrong_password_fails_every_login_as_401(good_stack: RunningStack, tmp_path: Path) -> None:
    """After the good run: Roundcube's own rate limit (3 failures a minute per user) would
    otherwise refuse the right password too. Slowly: Dovecot delays each failed login by
    2 s (auth_failure_delay), and the stack has 4 PHP-FPM workers."""
    source = (good_stack.root / "target.toml").read_text()
    (tmp_path / "wrong").write_text("not-the-password\n")
    target = tmp_path / "target.toml"
    target.write_text(
        source.replace(
            'ca_file = "pki/ca.pem"', f'ca_file = "{good_stack.root}/pki/ca.pem"'
        ).replace('password_file = "passwords"', 'password_file = "wrong"')
    )
    load = run_load(target, "webmail", duration_s=4, rate=1.0, out_dir=tmp_path / "out")
    phases = {p.name: p for p in load.phases if p.request_type == "webmail"}
    evidence = f"errors {load.errors}; {[(p.name, p.count, p.failures) for p in load.phases]}"
    assert set(phases) == {"login", "transaction"}, evidence  # no further than the login
    sessions = phases["transaction"]
    assert sessions.count >= 3 and sessions.failures == sessions.count, evidence
    assert phases["login"].failures == sessions.count, evidence
    failed = {k: v for k, v in load.errors.items() if not k.startswith("schedule:")}
    assert failed == {"webmail:401": sessions.count}, evidence
    assert load.slo.met is False, load.slo
