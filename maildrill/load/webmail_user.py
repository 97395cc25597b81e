"""The webmail user (seed S2): one paced browser session per arrival.

Each arrival logs in as the next test account, lists INBOX, opens its newest message, on
every ``plan.webmail_send_every``-th session sends one message to the next account, and
logs out; the whole session is one ``webmail transaction`` measured from its intended start
(coordinated omission corrected, as :class:`~maildrill.load.users.Paced` explains), with
the plan's ``timeout_s`` as its deadline, all its phases together::

    class Webmail(WebmailSession):
        @task
        def session(self) -> None:
            super().session()
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

from maildrill.clients.nodes import NodeCycle
from maildrill.clients.webmail import WebmailClient
from maildrill.errors import PhaseError
from maildrill.load.users import Paced, cached_target
from maildrill.target import Role
from maildrill.tls.context import tls_context

__all__ = ["WebmailSession"]


class WebmailSession(Paced):
    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        target = cached_target(self.plan.target)
        endpoint = target.endpoints[Role(self.plan.roles["read"])]
        self.accounts = [target.account(i) for i in range(target.accounts.count)]
        self._next_account = self.number % len(self.accounts)
        self._sessions = self.number  # users start at different points of the send cycle
        self.client = WebmailClient(
            environment.events.request.fire,
            NodeCycle(endpoint.host, self.plan.nodes[str(endpoint.role)]),
            flavour=endpoint.flavour,
            tls_context=tls_context(target),
            scheme=endpoint.scheme,
            base_path=urlsplit(endpoint.url).path or "/",
            timeout=self.plan.timeout_s,
        )
        self.arrival = (self.client.http.request_type, "transaction")

    def on_stop(self) -> None:
        self.client.close()

    def session(self) -> None:
        self.paced(self._one)

    def _one(self, intended: int) -> None:
        account = self.accounts[self._next_account]
        self._next_account = (self._next_account + 1) % len(self.accounts)
        every = self.plan.webmail_send_every
        self._sessions += 1
        web = self.client
        web.open()
        with web.meter.transaction("transaction", start_ns=intended, timeout=self.plan.timeout_s):
            web.login(account.local, account.password)
            try:
                uids = web.list("INBOX")
                if uids:
                    web.show(max(uids))
                if every and self._sessions % every == 0:
                    rcpt = self.accounts[self._next_account].address
                    web.send(rcpt, f"maildrill webmail {self.plan.run_id}", "Sent by maildrill.\n")
            finally:  # only a logged-in session logs out: a failed login has nothing to end
                with suppress(PhaseError):
                    web.logout()
        web.close()
