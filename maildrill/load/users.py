"""Locust User bases the scenarios in ``loadtests/`` declare themselves from.

:class:`SmtpSender` keeps an intended schedule: with ``U`` users and a rate ``R`` each user
starts a transaction every ``U/R`` seconds, and its latency is measured from that intended
start, so a slow server cannot hide its queueing (coordinated omission corrected). A user
more than one interval behind counts a *late* arrival; more than :data:`DROP_AFTER_S` behind,
it skips the missed arrivals and counts them *dropped*. Without ``--rate`` the senders are
capped at ``safety.max_rate`` all the same.
"""

from __future__ import annotations

import itertools
import random
import time
from functools import lru_cache
from typing import Any

from locust import User

from maildrill.clients.nodes import NodeCycle
from maildrill.clients.smtp import SmtpClient
from maildrill.load.ledger import make_message
from maildrill.load.plan import LoadPlan
from maildrill.load.plugin import STATE
from maildrill.resolve import tls_context
from maildrill.target import Role, Target, load_target

__all__ = ["DROP_AFTER_S", "SmtpSender"]

DROP_AFTER_S = 2.0
_user_numbers = itertools.count()


@lru_cache(maxsize=4)
def _target(path: str) -> Target:
    return load_target(path)


class SmtpSender(User):
    """Sends unique messages to test accounts; subclasses choose the endpoint purpose."""

    abstract = True
    # recipients: the watched accounts (full chain) or every account
    only_watched = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        plan = STATE.plan
        assert plan is not None
        self.plan: LoadPlan = plan
        target = _target(plan.target)
        role = Role(plan.roles["send"])
        endpoint = target.endpoints[role]
        number = next(_user_numbers)
        authenticated = role is not Role.SMTP
        count = plan.watch_accounts if self.only_watched else target.accounts.count
        self.recipients = [target.account(i).address for i in range(count)]
        self._next_rcpt = number % len(self.recipients)
        login_account = target.account(number % target.accounts.count)
        self.sender = login_account.address
        self.client = SmtpClient(
            environment.events.request.fire,
            NodeCycle(endpoint.host, plan.nodes[str(role)]),
            tls=tls_context(target),
            starttls=authenticated and not endpoint.implicit_tls,
            implicit_tls=endpoint.implicit_tls,
            login=(login_account.local, login_account.password) if authenticated else None,
            timeout=plan.timeout_s,
            per_session=plan.per_session,
        )
        self.interval_ns = int(1e9 * max(1, plan.users) / plan.pace_rate)
        self.next_ns = time.perf_counter_ns() + random.randrange(self.interval_ns)

    def on_stop(self) -> None:
        self.client.close()

    def send_one(self) -> None:
        """One paced arrival: wait for its intended start, send, account for it."""
        if not STATE.sending():
            self.client.close()
            time.sleep(0.2)
            return
        intended = self._wait_turn()
        rcpt = self.recipients[self._next_rcpt]
        self._next_rcpt = (self._next_rcpt + 1) % len(self.recipients)
        message_id, raw, digest = make_message(
            self.plan.run_id, self.sender, rcpt, self.plan.message_size
        )
        STATE.in_flight += 1
        try:
            outcome = self.client.send(raw, self.sender, [rcpt], start_ns=intended)
        finally:
            STATE.in_flight -= 1
        if outcome.ok and outcome.accepted_at is not None:
            STATE.message_accepted(message_id, digest, outcome.accepted_at)
        else:
            STATE.message_failed(outcome.transaction.kind or "error")

    def _wait_turn(self) -> int:
        now = time.perf_counter_ns()
        if now < self.next_ns:
            time.sleep((self.next_ns - now) / 1e9)
        elif now - self.next_ns > DROP_AFTER_S * 1e9:
            missed = (now - self.next_ns) // self.interval_ns
            STATE.dropped += int(missed)
            self.next_ns += missed * self.interval_ns
        elif now - self.next_ns > self.interval_ns:
            STATE.late += 1
        intended = self.next_ns
        self.next_ns += self.interval_ns
        return intended
