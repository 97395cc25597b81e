"""Locust User bases the scenarios in ``loadtests/`` declare themselves from.

:class:`Paced` keeps an intended schedule: with ``U`` users and a rate ``R`` each user
starts a transaction every ``U/R`` seconds, and its latency is measured from that intended
start, so a slow server cannot hide its queueing (coordinated omission corrected). Every
arrival due in the sending period is counted, one way or another:

- started on time, or late (more than one interval behind: a *late* arrival) and timed from
  its schedule;
- skipped, when its user was more than :data:`DROP_AFTER_S` behind (a server stall keeps
  every user busy) or when the sending period ended before it could start: a failed
  arrival (``schedule:dropped``) in the error rate, with the time it had waited recorded in
  its transaction histogram, so a stall shows in the percentiles instead of vanishing.

Each transaction has the plan's ``timeout_s`` as a deadline for the whole of it, so every
arrival has an outcome by the end of sending plus ``timeout_s``. Without ``--rate`` the
senders are capped at ``safety.max_rate`` all the same.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import suppress
from functools import lru_cache
from typing import Any

from locust import User

from maildrill.clients.imap import ImapClient
from maildrill.clients.nodes import NodeCycle
from maildrill.clients.pop3 import Pop3Client
from maildrill.clients.smtp import SmtpClient
from maildrill.errors import PhaseError
from maildrill.load.message import MessageFactory
from maildrill.load.plan import LoadPlan
from maildrill.load.starttls import secure
from maildrill.load.state import END_LAG_S, IMAP_CONNECTIONS, POP3_CONNECTIONS, state_of
from maildrill.target import Account, Endpoint, Role, Target, load_target
from maildrill.tls.context import tls_context

__all__ = ["DROP_AFTER_S", "MailboxReader", "Paced", "SmtpSender", "cached_target"]

DROP_AFTER_S = 2.0
IDLE_S = 0.2  # how often a user with no arrival left looks again
EXTERNAL_DOMAIN = "maildrill.test"  # envelope sender of inbound relay traffic
_IMAP = (Role.IMAP, Role.IMAPS)
_POP3 = (Role.POP3, Role.POP3S)


@lru_cache(maxsize=4)
def cached_target(path: str) -> Target:
    return load_target(path)


class Paced(User):
    """A user keeping an intended schedule of ``users / rate`` seconds between arrivals.

    A subclass names its arrivals' event (``arrival``: request type and name, e.g.
    ``("smtp", "transaction")``) so skipped ones are counted where its served ones are."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        # this process's State, which the user measures into
        self.load_state = state_of(environment)
        plan = self.load_state.plan
        assert plan is not None
        self.plan: LoadPlan = plan
        self.number = next(self.load_state.user_numbers)
        self.arrival: tuple[str, str] = ("", "transaction")
        self.traffic_class = ""
        # a shaped run starts at the shape's first rate, not the full one
        self.interval_ns = int(1e9 * max(1, plan.users) / plan.rate_at(0.0))
        self.next_ns = time.perf_counter_ns() + random.randrange(self.interval_ns)

    def paced(self, work: Callable[[int], None]) -> None:
        """Run ``work(intended_start_ns)`` at this user's next arrival, if one is left.

        From the wait on the user counts as in flight: the run must not end while it sleeps
        towards an arrival and then starts work nobody is left to measure (a message sent
        after the watchers stopped would be counted lost)."""
        self.load_state.in_flight += 1
        intended = None
        try:
            intended = self._wait_turn()
            if intended is not None:
                work(intended)
        finally:
            # also when Locust stops this user mid-work: what it never started is counted
            if not self.load_state.sending():
                self._drop_due(time.perf_counter_ns(), self._end_ns())
            self.load_state.in_flight -= 1
        if intended is None:
            time.sleep(IDLE_S)

    def _end_ns(self) -> int:
        """The end of the sending period on the ``perf_counter_ns`` clock."""
        return time.perf_counter_ns() + int((self.load_state.send_until - time.time()) * 1e9)

    def _wait_turn(self) -> int | None:
        """The intended start of the arrival to run now, or None if none is left."""
        if self.plan.shape != "constant" and self.load_state.started:
            rate = self.plan.rate_at(time.time() - self.load_state.started)
            self.interval_ns = int(1e9 * max(1, self.plan.users) / rate)
        end = self._end_ns()
        if self.next_ns >= end:
            return None  # no arrival of this user falls in the sending period (any more)
        now = time.perf_counter_ns()
        if now < self.next_ns:
            time.sleep((self.next_ns - now) / 1e9)
            now = time.perf_counter_ns()
        if now >= end + END_LAG_S * 1e9:
            self._drop_due(now, end)  # sending is over: nothing starts any more
            return None
        behind = now - self.next_ns
        if behind > DROP_AFTER_S * 1e9:
            # start the latest due arrival; the older ones are skipped, not started late
            self._drop_due(now, self.next_ns + (behind // self.interval_ns) * self.interval_ns)
        elif behind > self.interval_ns:
            self.load_state.late += 1
        intended = self.next_ns
        self.next_ns += self.interval_ns
        return intended

    def _drop_due(self, now: int, until: int) -> None:
        """Count every arrival scheduled before ``until`` as skipped, with its wait so far."""
        request_type, name = self.arrival
        while self.next_ns < until:
            waited_us = max(0, now - self.next_ns) // 1000
            self.load_state.arrival_dropped(
                request_type, name, waited_us, traffic_class=self.traffic_class
            )
            self.next_ns += self.interval_ns


class SmtpSender(Paced):
    """Sends unique messages to test accounts; subclasses choose the endpoint purpose.

    Its transactions carry a traffic class (seed S8): ``inbound`` relay over the smtp
    endpoint, ``submission`` when authenticated."""

    abstract = True
    # recipients: the watched accounts (full chain) or every account
    only_watched = True
    # which of the plan's roles to send through: "send", or "submit" in a mixed scenario
    purpose = "send"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        plan = self.plan
        target = cached_target(plan.target)
        role = Role(plan.roles[self.purpose])
        endpoint = target.endpoints[role]
        number = self.number
        authenticated = role is not Role.SMTP
        count = plan.watch_accounts if self.only_watched else target.accounts.count
        self.recipients = [target.account(i).address for i in range(count)]
        self._next_rcpt = number % len(self.recipients)
        # its own seeded draw per user: the same user of a rerun sends the same shapes
        self.messages = MessageFactory(plan.profile(), plan.run_id, seed=number)
        login_account = target.account(number % target.accounts.count)
        # inbound relay mail comes from outside: a sender in the target's own domain sent
        # from the load generator's address rightly fails SPF -all (seed S12) at a good MX
        self.sender = (
            login_account.address if authenticated else f"load{number:04d}@{EXTERNAL_DOMAIN}"
        )
        self.traffic_class = "submission" if authenticated else "inbound"
        self.client = SmtpClient(
            environment.events.request.fire,
            NodeCycle(endpoint.host, plan.nodes[str(role)]),
            tls=tls_context(target),
            starttls=authenticated and not endpoint.implicit_tls,
            implicit_tls=endpoint.implicit_tls,
            login=(login_account.local, login_account.password) if authenticated else None,
            timeout=plan.timeout_s,
            per_session=plan.per_session,
            traffic_class=self.traffic_class,
        )
        self.arrival = (self.client.request_type, "transaction")

    def on_stop(self) -> None:
        self.client.close()

    def send_one(self) -> None:
        """One paced arrival: wait for its intended start, send, account for it."""
        if not self.load_state.sending():
            self.client.close()
        self.paced(self._send)

    def _send(self, intended: int) -> None:
        rcpts = self._draw_recipients()
        message = self.messages.make(self.sender, rcpts)
        outcome = self.client.send(message.raw, self.sender, rcpts, start_ns=intended)
        if outcome.ok and outcome.accepted_at is not None:
            accepted = [r for r in rcpts if r not in outcome.refused] if outcome.refused else rcpts
            self.load_state.message_sent(
                message.message_id, message.digest, outcome.accepted_at, accepted, outcome.refused
            )
        else:  # every copy shares the failure, unless a recipient had its own refusal
            kind = outcome.transaction.kind or "error"
            refused = {r: outcome.refused.get(r, kind) for r in rcpts}
            self.load_state.message_sent(message.message_id, message.digest, None, [], refused)

    def _draw_recipients(self) -> list[str]:
        """Distinct recipients in turn; as many as the profile draws, at most all of them."""
        everyone = self.recipients
        count = min(self.messages.recipient_count(), len(everyone))
        first = self._next_rcpt
        self._next_rcpt = (first + 1) % len(everyone)
        if count == 1:
            return [everyone[first]]
        return [everyone[(first + i) % len(everyone)] for i in range(count)]


class MailboxReader(Paced):
    """One paced IMAP or POP3 session per arrival against the test accounts, in turn."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        target = cached_target(self.plan.target)
        role = Role(self.plan.roles["read"])
        endpoint = target.endpoints[role]
        self.accounts = [target.account(i) for i in range(target.accounts.count)]
        self._next_account = self.number % len(self.accounts)
        options: dict[str, Any] = {
            "tls_context": tls_context(target),
            "implicit_tls": endpoint.implicit_tls,
            # where the server offers it, after connect: see maildrill.load.starttls.secure
            "starttls": False,
            "timeout": self.plan.timeout_s,
        }
        self.endpoint = endpoint
        nodes = NodeCycle(endpoint.host, self.plan.nodes[str(role)])
        fire = environment.events.request.fire
        gauges = self.load_state.gauge_sources
        self.imap = (
            ImapClient(fire, nodes, gauge=gauges.get(IMAP_CONNECTIONS), **options)
            if role in _IMAP
            else None
        )
        self.pop3 = (
            Pop3Client(fire, nodes, gauge=gauges.get(POP3_CONNECTIONS), **options)
            if role in _POP3
            else None
        )
        client = self.imap or self.pop3
        self.arrival = (client.request_type if client is not None else str(role), "session")

    def session(self) -> None:
        """One paced session: log in, look at the mailbox, read one message, log out."""
        self.paced(self._session)

    def _session(self, intended: int) -> None:
        account = self.accounts[self._next_account]
        self._next_account = (self._next_account + 1) % len(self.accounts)
        if self.imap is not None:
            self._imap_session(self.imap, self.endpoint, account, intended, self.plan.timeout_s)
        elif self.pop3 is not None:
            self._pop3_session(self.pop3, self.endpoint, account, intended, self.plan.timeout_s)

    @staticmethod
    def _imap_session(
        imap: ImapClient, endpoint: Endpoint, account: Account, intended: int, timeout: float
    ) -> None:
        with imap.meter.transaction("session", start_ns=intended, timeout=timeout):
            try:
                imap.connect()
                secure(imap, endpoint)
                imap.login(account.local, account.password)
                imap.select("INBOX")
                uids = imap.search(["ALL"])
                if uids:
                    imap.fetch(uids[-1:], ["FLAGS", "BODY.PEEK[]"])
            finally:
                with suppress(PhaseError):
                    imap.logout()

    @staticmethod
    def _pop3_session(
        pop3: Pop3Client, endpoint: Endpoint, account: Account, intended: int, timeout: float
    ) -> None:
        with pop3.meter.transaction("session", start_ns=intended, timeout=timeout):
            try:
                pop3.connect()
                secure(pop3, endpoint)
                pop3.login(account.local, account.password)
                count, _ = pop3.stat()
                pop3.uidl()
                if count:
                    pop3.retr(count)
            finally:
                with suppress(PhaseError):
                    pop3.quit()
