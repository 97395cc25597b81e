"""An instrumented POP3 client over poplib (request type ``pop3`` or ``pop3s``).

Phases: connect (TCP, TLS on pop3s, greeting), starttls (STLS, RFC 2595), login
(USER/PASS), stat, uidl, retr, dele, quit. Open connections are counted in the ``gauge``
given, if any, as the IMAP client counts its own. Like the IMAP client, each method is
one phase and raises an already-reported :class:`~maildrill.errors.PhaseError`::

    pop = Pop3Client(fire, nodes, tls_context=ctx, starttls=True)
    with pop.meter.transaction("session"):
        pop.connect(); pop.login("user0001", "pw"); count, size = pop.stat()
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import ssl

from maildrill.clients.events import Fire, Gauge, Meter
from maildrill.clients.nodes import NodeCycle, connect, node_name

__all__ = ["Pop3Client"]


class _NodePOP3(poplib.POP3):
    """Connects to one node's address; ``host`` stays the name for STLS verification.
    With ``wrap`` (implicit TLS) the handshake alone is the ``tls`` phase."""

    def __init__(
        self,
        node: tuple[str, int],
        wrap: ssl.SSLContext | None,
        meter: Meter,
        host: str,
        port: int,
        timeout: float,
    ) -> None:
        self.node = node  # before poplib's __init__, which connects
        self.wrap = wrap
        self.meter = meter
        try:
            super().__init__(host, port, timeout)
        except BaseException:
            # poplib reads the greeting in __init__: when that fails, the object is never
            # handed back, so nobody else can close the socket it already opened
            # (the file made from the socket holds it open too)
            for part in (getattr(self, "file", None), getattr(self, "sock", None)):
                if part is not None:
                    part.close()
            raise

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = connect(self.node, timeout)
        if self.wrap is None:
            return sock
        with self.meter.phase("tls"):  # the handshake alone (seed S22)
            return self.wrap.wrap_socket(sock, server_hostname=self.host)


class Pop3Client:
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
        self.request_type = "pop3s" if implicit_tls else "pop3"
        self.meter = Meter(fire, self.request_type)
        self.client: poplib.POP3 | None = None

    def connect(self) -> None:
        address = self._nodes.next()
        self.meter = Meter(self._fire, self.request_type, node=node_name(address))
        wrap = self._tls if self._implicit else None
        with self.meter.phase("connect"):
            self.client = _NodePOP3(
                address, wrap, self.meter, self._nodes.host, address[1], self._timeout
            )
        if self._gauge is not None:
            self._gauge.up()
        if self._starttls and not self._implicit:
            with self.meter.phase("starttls"):
                self._c.stls(self._tls)

    @property
    def _c(self) -> poplib.POP3:
        if self.client is None:
            raise ConnectionResetError("not connected")
        return self.client

    def starttls(self) -> None:
        """STLS on a connection opened without it (``starttls=False``); whether the server
        offers it, :meth:`capa` says."""
        with self.meter.phase("starttls"):
            self._c.stls(self._tls)

    def login(self, user: str, password: str) -> None:
        with self.meter.phase("login"):
            self._c.user(user)
            self._c.pass_(password)

    def stat(self) -> tuple[int, int]:
        with self.meter.phase("stat"):
            return self._c.stat()

    def uidl(self) -> list[tuple[int, str]]:
        with self.meter.phase("uidl"):
            _, lines, _ = self._c.uidl()
        out = []
        for line in lines:
            number, _, uid = line.decode("ascii", "replace").partition(" ")
            out.append((int(number), uid))
        return out

    def capa(self) -> set[str]:
        """The capabilities the server lists (RFC 2449); empty if it has no CAPA."""
        with self.meter.phase("capa"):
            try:
                return {name.upper() for name in self._c.capa()}
            except poplib.error_proto:
                return set()  # -ERR: an RFC 1939 server without extensions

    def top(self, number: int, lines: int = 0) -> bytes:
        """The header and the first ``lines`` lines of the body (TOP: optional, RFC 1939 §7;
        listed by CAPA)."""
        with self.meter.phase("top"):
            _, data, _ = self._c.top(number, lines)
        return b"\r\n".join(data)

    def retr(self, number: int) -> bytes:
        with self.meter.phase("retr"):
            _, lines, _ = self._c.retr(number)
        return b"\r\n".join(lines)

    def dele(self, number: int) -> None:
        with self.meter.phase("dele"):
            self._c.dele(number)

    def quit(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        if self._gauge is not None:
            self._gauge.down()
        try:
            with self.meter.phase("quit"):
                client.quit()
        finally:
            with contextlib.suppress(OSError):  # the socket of a connection already broken
                client.close()
