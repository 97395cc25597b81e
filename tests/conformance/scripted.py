"""Scripted loopback servers for the conformance proofs: a :class:`Listener` on a free
loopback port runs a protocol function, in a thread of its own, on a :class:`Connection`
for every client, which reads and sends CRLF lines and switches to TLS.

Usage::

    def greet(conn: Connection) -> None:
        conn.send("220 mx.example.test ESMTP")
        while (line := conn.read_line()) is not None:
            if line.upper() == "STARTTLS" and not conn.tls:
                conn.send("220 2.0.0 ready to start TLS")
                conn.start_tls()
            else:
                conn.send("502 5.5.1 not implemented")

    listener = Listener(greet, ctx)  # ctx: a server-side ssl.SSLContext
    try:
        ...  # clients connect to 127.0.0.1:listener.port
    finally:
        listener.close()
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from contextlib import suppress

__all__ = ["Connection", "Listener"]


class Connection:
    """The server's side of one connection: lines in and out, and the switch to TLS.

    ``sock`` is the socket in use, the TLS one once :meth:`start_tls` has run; ``tls`` says
    whether it has.

    Usage::

        conn.send("+OK ready")
        command = conn.read_line()  # None once the client has gone
    """

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext) -> None:
        self.sock = sock
        self.ctx = ctx
        self.tls = False
        self._held = [sock]  # the TLS socket replaces the plain one; close() closes all
        self._buffer = b""

    def read_until(self, *ends: bytes) -> bytes | None:
        """Everything before the first of ``ends`` to arrive (consumed too); None once the
        client has gone.

        Usage: ``data = conn.read_until(b"\\r\\n.\\r\\n")`` reads an SMTP message body;
        ``conn.read_until(b"\\r\\n.\\r\\n", b"\\n.\\n")`` is a server that also ends it
        at a bare LF (the SMTP-smuggling flaw).
        """
        while not (found := [(i, end) for end in ends if (i := self._buffer.find(end)) >= 0]):
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        index, end = min(found)
        data, self._buffer = self._buffer[:index], self._buffer[index + len(end) :]
        return data

    def read_line(self) -> str | None:
        """The next line without its CRLF; None once the client has gone.

        Usage: ``while (line := conn.read_line()) is not None: ...``
        """
        data = self.read_until(b"\r\n")
        return None if data is None else data.decode("utf-8", "replace")

    def send(self, *lines: str) -> None:
        """Each line with CRLF after it, in one write.

        Usage: ``conn.send("250-mx.example.test", "250 8BITMIME")``
        """
        self.sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def start_tls(self, *, keep_buffer: bool = False) -> None:
        """The TLS handshake as the server; ``keep_buffer`` keeps what the client sent before it.

        RFC 3207 §4.2, RFC 2595 §4 and RFC 9051 §6.2.1 forbid acting on anything read before
        the handshake; ``keep_buffer=True`` breaks that on purpose, to model the plaintext
        command injection of CVE-2011-0411.

        Usage: ``conn.send("220 2.0.0 ready to start TLS"); conn.start_tls()``
        """
        if not keep_buffer:
            self._buffer = b""
        self.sock = self.ctx.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        self._held.append(self.sock)  # closed by close() even if the handshake fails
        self.sock.do_handshake()
        self.tls = True

    def close(self) -> None:
        """Closes every socket this connection has held, the TLS one first."""
        for sock in reversed(self._held):
            sock.close()


class Listener:
    """One loopback port: every connection gets a thread running ``protocol`` on a
    :class:`Connection`, on TLS from the first byte when ``implicit_tls``.

    Usage::

        listener = Listener(protocol, ctx, implicit_tls=True)
        stack.callback(listener.close)
        url = f"imaps://127.0.0.1:{listener.port}"
    """

    def __init__(
        self,
        protocol: Callable[[Connection], None],
        ctx: ssl.SSLContext,
        *,
        implicit_tls: bool = False,
    ) -> None:
        self.protocol = protocol
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._session, args=(sock,), daemon=True).start()

    def _session(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        conn = Connection(sock, self.ctx)
        try:
            if self.implicit_tls:
                conn.start_tls()
            self.protocol(conn)
        except OSError:  # ssl.SSLError too: the client hung up, timed out or gave up on TLS
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Stops accepting; connections already accepted run on to their end."""
        # close() alone leaves a thread blocked in accept() on Linux; shutdown() wakes it
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
