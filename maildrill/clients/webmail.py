"""An instrumented webmail client (seed S2): one timed phase per thing a user does.

A webmail product's own requests live in one *flavour* module (Roundcube:
:mod:`maildrill.clients.roundcube`); the target file's ``endpoints.webmail.flavour`` picks
it from :data:`FLAVOURS`. Adding a product is one module with the five methods of
:class:`Flavour` and one line here. Phases, reported with request type ``webmail``:
``login``, ``list``, ``show``, ``send``, ``logout``; the caller times the whole
``transaction``. Like the other clients, each method raises an already-reported
:class:`~maildrill.errors.PhaseError`::

    web = WebmailClient(fire, nodes, flavour="roundcube", tls_context=ctx)
    web.open()
    with web.meter.transaction("transaction"):
        web.login("user0001", pw); uids = web.list(); web.show(uids[-1]); web.logout()
"""

from __future__ import annotations

import ssl
from typing import Protocol

from maildrill.clients.events import Fire, Meter
from maildrill.clients.http import HttpClient
from maildrill.clients.nodes import NodeCycle
from maildrill.clients.roundcube import Roundcube

__all__ = ["FLAVOURS", "Flavour", "WebmailClient"]


class Flavour(Protocol):
    """What one webmail product must do; each method raises on anything but success."""

    def login(self, user: str, password: str) -> None: ...
    def list(self, mailbox: str) -> list[int]: ...
    def show(self, mailbox: str, uid: int) -> int: ...
    def send(self, to: str, subject: str, body: str) -> None: ...
    def logout(self) -> None: ...


class _FlavourType(Protocol):
    def __call__(self, http: HttpClient) -> Flavour: ...


# target file's endpoints.webmail.flavour -> adapter
FLAVOURS: dict[str, _FlavourType] = {"roundcube": Roundcube}


class WebmailClient:
    def __init__(
        self,
        fire: Fire,
        nodes: NodeCycle,
        *,
        flavour: str = "roundcube",
        tls_context: ssl.SSLContext | None = None,
        scheme: str = "https",
        base_path: str = "/",
        timeout: float = 10.0,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown webmail flavour {flavour!r} (one of: {', '.join(FLAVOURS)})")
        self.http = HttpClient(
            fire, nodes, tls_context=tls_context, scheme=scheme, base_path=base_path,
            request_type="webmail", timeout=timeout,
        )  # fmt: skip
        self._make = FLAVOURS[flavour]
        self._flavour: Flavour = self._make(self.http)

    @property
    def meter(self) -> Meter:
        return self.http.meter

    def open(self) -> None:
        """A new browser session (cookies, node); the first request connects."""
        self.http.open()
        self._flavour = self._make(self.http)

    def login(self, user: str, password: str) -> None:
        with self.meter.phase("login"):
            self._flavour.login(user, password)

    def list(self, mailbox: str = "INBOX") -> list[int]:
        with self.meter.phase("list"):
            return self._flavour.list(mailbox)

    def show(self, uid: int, mailbox: str = "INBOX") -> int:
        with self.meter.phase("show"):
            return self._flavour.show(mailbox, uid)

    def send(self, to: str, subject: str, body: str) -> None:
        with self.meter.phase("send"):
            self._flavour.send(to, subject, body)

    def logout(self) -> None:
        with self.meter.phase("logout"):
            self._flavour.logout()

    def close(self) -> None:
        self.http.close()
