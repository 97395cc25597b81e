"""STARTTLS-INJECTION both ways: an SMTP server that runs a command pipelined in plaintext
behind STARTTLS once TLS is up (CVE-2011-0411) fails it; the same server discarding the
buffered bytes, as RFC 3207 §4.2 requires, passes."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conformance.tls.pki import make_pki
from tests.conformance.tls.suite import describe, run_suites


class _Smtp:
    """A minimal ESMTP server with STARTTLS; ``vulnerable`` keeps the plaintext buffer."""

    def __init__(self, ctx: ssl.SSLContext, *, vulnerable: bool) -> None:
        self.ctx = ctx
        self.vulnerable = vulnerable
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        held = [conn]  # the TLS socket replaces the plain one after STARTTLS
        try:
            self._talk(held)
        except (OSError, ssl.SSLError):
            pass
        finally:
            held[-1].close()

    def _talk(self, held: list[socket.socket]) -> None:
        conn = held[0]
        conn.sendall(b"220 mx.example.test ESMTP\r\n")
        buffer, tls = b"", False
        while True:
            while b"\r\n" not in buffer:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
            line, buffer = buffer.split(b"\r\n", 1)
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                extensions = b"" if tls else b"250-STARTTLS\r\n"
                conn.sendall(b"250-mx.example.test\r\n" + extensions + b"250 8BITMIME\r\n")
            elif verb == b"STARTTLS" and not tls:
                conn.sendall(b"220 2.0.0 ready to start TLS\r\n")
                if not self.vulnerable:
                    buffer = b""  # RFC 3207 §4.2: forget everything from before TLS
                conn = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                held.append(conn)  # closed even if the handshake fails
                conn.do_handshake()
                tls = True
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            elif verb in (b"NOOP", b"RSET"):
                conn.sendall(b"250 2.0.0 ok\r\n")
            else:
                conn.sendall(b"502 5.5.1 not implemented\r\n")

    def close(self) -> None:
        self.sock.close()


@contextmanager
def smtp_target(directory: Path, *, vulnerable: bool) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_pki(directory)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = _Smtp(ctx, vulnerable=vulnerable)
    path = directory / "target.toml"
    path.write_text(
        f'name = "starttls"\ndomain = "example.test"\nca_file = "{ca}"\n\n'
        f'[endpoints.smtp]\nurl = "smtp://127.0.0.1:{server.port}"\n',
        encoding="utf-8",
    )
    try:
        yield path
    finally:
        server.close()


@pytest.mark.parametrize(("vulnerable", "verdict"), [(False, "pass"), (True, "fail")])
def test_starttls_injection_both_ways(tmp_path: Path, vulnerable: bool, verdict: str) -> None:
    with smtp_target(tmp_path / f"vulnerable-{vulnerable}", vulnerable=vulnerable) as target:
        run = run_suites(target, tmp_path)
    control = "STARTTLS-INJECTION[smtp]"
    assert run.controls[control]["verdict"] == verdict, describe(run, {control})
    if vulnerable:
        assert "NOOP" in run.controls[control]["reason"], describe(run, {control})
