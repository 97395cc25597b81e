"""An instrumented IMAP client over imapclient (request type ``imap`` or ``imaps``).

Phases: connect (TCP, TLS on imaps, greeting, capabilities), tls (the implicit-TLS
handshake alone), starttls, login, select, search, fetch, store, append, idle, logout. Open
connections are counted in the ``gauge`` given, if any (the load engine's State gives its
own: seed S22, the IMAP concurrent-connection peak). Each method runs one phase and raises
:class:`~maildrill.errors.PhaseError` (already reported) on failure, so callers wrap
a session in ``meter.transaction(...)``::

    imap = ImapClient(fire, nodes, tls=ctx, starttls=True)
    with imap.meter.transaction("session") as tx:
        imap.connect(); imap.login("user", "pw"); imap.select("INBOX")
        uids = imap.search(["ALL"])
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from typing import Any

from imapclient import IMAPClient, imap4, tls

from maildrill.clients.events import Fire, Gauge, Meter
from maildrill.clients.nodes import NodeCycle, connect, node_name

__all__ = ["ImapClient"]

POLL_S = 0.1  # poll interval where the server has no IDLE


class _NodeIMAP4(imap4.IMAP4WithTimeout):  # type: ignore[misc]
    """Connects to one node's address while keeping the host name for TLS."""

    def __init__(self, node: tuple[str, int], host: str, port: int, timeout: float | None):
        self.node = node  # before imaplib's __init__, which connects
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return connect(self.node, timeout or self._timeout)


class _NodeIMAP4TLS(tls.IMAP4_TLS):  # type: ignore[misc]
    """Implicit TLS to one node's address; the handshake alone is the ``tls`` phase."""

    def __init__(
        self,
        node: tuple[str, int],
        meter: Meter,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        timeout: float | None,
    ) -> None:
        self.node = node  # before imaplib's __init__, which connects
        self.meter = meter
        super().__init__(host, port, ssl_context, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = connect(self.node, timeout or self._timeout)
        with self.meter.phase("tls"):
            return self._wrap(sock)

    def _wrap(self, sock: socket.socket) -> socket.socket:
        wrapped: socket.socket = tls.wrap_socket(sock, self.ssl_context, self.host)
        return wrapped


class _NodeIMAPClient(IMAPClient):  # type: ignore[misc]
    def __init__(self, node: tuple[str, int], meter: Meter, *args: Any, **kwargs: Any) -> None:
        self._node = node
        self._meter = meter
        super().__init__(*args, **kwargs)

    def _create_IMAP4(self) -> Any:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _NodeIMAP4TLS(
                self._node, self._meter, self.host, self.port, self.ssl_context, timeout
            )
        return _NodeIMAP4(self._node, self.host, self.port, timeout)


class ImapClient:
    def __init__(
        self,
        fire: Fire,
        nodes: NodeCycle,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        starttls: bool = False,
        timeout: float = 10.0,
        gauge: Gauge | None = None,
    ) -> None:
        self._fire = fire
        self._gauge = gauge  # where open connections are counted; None: not counted
        self._nodes = nodes
        self._tls = tls_context
        self._implicit = implicit_tls
        self._starttls = starttls
        self._timeout = timeout
        self.request_type = "imaps" if implicit_tls else "imap"
        self.meter = Meter(fire, self.request_type)
        self.client: IMAPClient | None = None

    def connect(self) -> None:
        address = self._nodes.next()
        self.meter = Meter(self._fire, self.request_type, node=node_name(address))
        with self.meter.phase("connect"):
            self.client = _NodeIMAPClient(
                address,
                self.meter,
                self._nodes.host,
                port=address[1],
                ssl=self._implicit,
                ssl_context=self._tls,
                timeout=self._timeout,
            )
        if self._gauge is not None:
            self._gauge.up()
        if self._starttls and not self._implicit:
            with self.meter.phase("starttls"):
                self._c.starttls(self._tls)

    @property
    def _c(self) -> IMAPClient:
        if self.client is None:
            raise ConnectionResetError("not connected")
        return self.client

    def offers_starttls(self) -> bool:
        """Whether the server lists STARTTLS before login (RFC 3501 §6.2.1)."""
        with self.meter.phase("capability"):
            return bool(self._c.has_capability("STARTTLS"))

    def starttls(self) -> None:
        """STARTTLS on a connection opened without it (``starttls=False``)."""
        with self.meter.phase("starttls"):
            self._c.starttls(self._tls)

    def login(self, user: str, password: str) -> None:
        with self.meter.phase("login"):
            self._c.login(user, password)

    def select(self, folder: str = "INBOX") -> dict[bytes, Any]:
        with self.meter.phase("select"):
            return dict(self._c.select_folder(folder))

    def search(self, criteria: list[Any]) -> list[int]:
        with self.meter.phase("search"):
            return list(self._c.search(criteria))

    def fetch(self, uids: list[int], parts: list[str]) -> dict[int, dict[bytes, Any]]:
        with self.meter.phase("fetch"):
            return dict(self._c.fetch(uids, parts))

    def store_deleted(self, uids: list[int]) -> None:
        with self.meter.phase("store"):
            self._c.add_flags(uids, [b"\\Deleted"], silent=True)
            if self._c.has_capability("UIDPLUS"):
                self._c.uid_expunge(uids)
            elif set(self._c.search(["DELETED"])) <= set(uids):
                # plain EXPUNGE removes every message flagged \Deleted, someone else's too:
                # only when those are all these (else they stay flagged, and NOT DELETED
                # hides them)
                self._c.expunge()

    def append(self, message: bytes, flags: tuple[bytes, ...] = (), folder: str = "INBOX") -> None:
        with self.meter.phase("append"):
            self._c.append(folder, message, flags=flags)

    def idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the server to announce a change; True if it did."""
        c = self._c
        if not c.has_capability("IDLE"):
            time.sleep(min(seconds, POLL_S))  # gevent-patched under Locust
            return True
        with self.meter.phase("idle"):
            c.idle()
            try:
                responses = c.idle_check(timeout=seconds)
            finally:
                c.idle_done()
        return bool(responses)

    def logout(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        if self._gauge is not None:
            self._gauge.down()
        try:
            with self.meter.phase("logout"):
                client.logout()
        finally:
            with contextlib.suppress(OSError):  # the socket of a connection already broken
                client.shutdown()
