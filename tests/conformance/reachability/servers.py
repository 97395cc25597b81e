"""Scripted loopback servers for the reachability proofs: SMTP, IMAP, POP3 and HTTP just
far enough to answer what conformance/reachability sends, each well-behaved or with one
named flaw, and the target file that names one of them per role.

Usage::

    with serve(directory, {Role.SMTP: None, Role.IMAP: "PREAUTH greeting"}) as target_file:
        run_suites(target_file, directory, "reachability")
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from maildrill.target import IMPLICIT_TLS, Role
from tests.conformance.scripted import Connection, Listener
from tests.conformance.tls.pki import Leaf, make_pki

__all__ = ["FLAWS", "serve"]

HOST_NAME = "mx.example.test"

# every flaw a role's server can have; None is the well-behaved server
_SMTP_FLAWS = {"554 greeting", "greeting without host name", "no STARTTLS", "no AUTH"}
_IMAP_FLAWS = {"PREAUTH greeting", "BYE greeting", "OKAY greeting", "no IMAP4rev1", "no STARTTLS"}
_POP3_FLAWS = {"-ERR greeting", "no CAPA", "no STLS"}
_HTTP_FLAWS = {"500"}
_CLOSED = {"closed port"}
_NO_TLS = {"no TLS"}  # the protocol in plaintext on an implicit-TLS port
FLAWS: dict[Role, set[str]] = {
    Role.SMTP: _SMTP_FLAWS | _CLOSED,
    Role.SUBMISSION: _SMTP_FLAWS | _CLOSED,
    Role.SMTPS: _SMTP_FLAWS | _CLOSED | _NO_TLS,
    Role.IMAP: _IMAP_FLAWS | _CLOSED,
    Role.IMAPS: _IMAP_FLAWS | _CLOSED | _NO_TLS,
    Role.POP3: _POP3_FLAWS | _CLOSED,
    Role.POP3S: _POP3_FLAWS | _CLOSED | _NO_TLS,
    Role.WEBMAIL: _HTTP_FLAWS | _CLOSED,
}


class _ClosedPort:
    """A port bound but not listening: connecting is refused, and no one else takes it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def _smtp(flaw: str | None, s: Connection) -> None:
    if flaw == "554 greeting":
        s.send(f"554 5.3.2 {HOST_NAME} no SMTP service here")
    elif flaw == "greeting without host name":
        s.send("220 ESMTP ready")
    else:
        s.send(f"220 {HOST_NAME} ESMTP")
    while (line := s.read_line()) is not None:
        verb = line.split(" ", 1)[0].upper()
        if verb == "QUIT":
            s.send("221 2.0.0 bye")
            return
        if flaw == "554 greeting":
            s.send("503 5.5.1 no SMTP service here")  # RFC 5321 §3.1: only QUIT after 554
        elif verb == "EHLO":
            keywords = [HOST_NAME, "8BITMIME"]
            if not s.tls and flaw != "no STARTTLS":
                keywords.append("STARTTLS")
            if s.tls and flaw != "no AUTH":
                keywords.append("AUTH PLAIN LOGIN")  # RFC 4954 §4: only once TLS is up
            # RFC 5321 §4.2.1: "250-" on every line but the last
            s.send(*(f"250-{k}" for k in keywords[:-1]), f"250 {keywords[-1]}")
        elif verb == "STARTTLS" and not s.tls:
            s.send("220 2.0.0 ready to start TLS")
            s.start_tls()
        else:
            s.send("502 5.5.1 not implemented")


def _imap(flaw: str | None, s: Connection) -> None:
    if flaw == "BYE greeting":
        s.send(f"* BYE {HOST_NAME} too busy")  # RFC 9051 §7.1.5: then the server closes
        return
    if flaw == "PREAUTH greeting":
        s.send(f"* PREAUTH {HOST_NAME} logged in without credentials")
    elif flaw == "OKAY greeting":
        s.send(f"* OKAY {HOST_NAME} IMAP4rev1 ready")  # not the OK status word
    else:
        s.send(f"* OK {HOST_NAME} IMAP4rev1 ready")
    while (line := s.read_line()) is not None:
        tag, _, command = line.partition(" ")
        verb = command.split(" ", 1)[0].upper()
        if verb == "CAPABILITY":
            caps = ["IDLE"] if flaw == "no IMAP4rev1" else ["IMAP4rev1", "IDLE"]
            if not s.tls and flaw != "no STARTTLS":
                caps += ["STARTTLS", "LOGINDISABLED"]  # RFC 9051 §6.2.3
            s.send(f"* CAPABILITY {' '.join(caps)}", f"{tag} OK CAPABILITY completed")
        elif verb == "STARTTLS" and not s.tls:
            s.send(f"{tag} OK begin TLS")
            s.start_tls()
        elif verb == "LOGOUT":
            s.send(f"* BYE {HOST_NAME} logging out", f"{tag} OK LOGOUT completed")
            return
        else:
            s.send(f"{tag} BAD not implemented")


def _pop3(flaw: str | None, s: Connection) -> None:
    if flaw == "-ERR greeting":
        s.send(f"-ERR {HOST_NAME} unavailable")
        return
    s.send(f"+OK {HOST_NAME} POP3 ready")
    while (line := s.read_line()) is not None:
        verb = line.split(" ", 1)[0].upper()
        if verb == "CAPA" and flaw != "no CAPA":
            stls = [] if s.tls or flaw == "no STLS" else ["STLS"]
            # RFC 2449 §5: a multi-line answer ending with "."
            s.send("+OK capability list follows", "USER", "UIDL", *stls, ".")
        elif verb == "STLS" and not s.tls:
            s.send("+OK begin TLS")
            s.start_tls()
        elif verb == "QUIT":
            s.send(f"+OK {HOST_NAME} bye")
            return
        else:
            s.send("-ERR not implemented")


def _http(flaw: str | None, s: Connection) -> None:
    while line := s.read_line():  # the request line and headers, up to the blank line
        pass
    if line is None:
        return
    status = "500 Internal Server Error" if flaw == "500" else "200 OK"
    s.send(f"HTTP/1.1 {status}", "Content-Length: 0", "Connection: close", "")


_TALK: dict[Role, Callable[[str | None, Connection], None]] = {
    Role.SMTP: _smtp,
    Role.SUBMISSION: _smtp,
    Role.SMTPS: _smtp,
    Role.IMAP: _imap,
    Role.IMAPS: _imap,
    Role.POP3: _pop3,
    Role.POP3S: _pop3,
    Role.WEBMAIL: _http,
}


@contextmanager
def serve(
    directory: Path, flaws: Mapping[Role, str | None], leaf: Leaf | None = None
) -> Iterator[Path]:
    """One server per role in ``flaws`` (None: well-behaved), and a target file naming them;
    ``leaf`` is the certificate every TLS port serves."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = leaf or Leaf()
    leaf = leaf or Leaf()
    ca, cert, key = make_pki(directory, leaf)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if leaf.key_bits < 2048:
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:@SECLEVEL=0")  # or OpenSSL refuses it
    ctx.load_cert_chain(cert, key)
    lines = [f'name = "reachability"\ndomain = "example.test"\nca_file = "{ca}"\n']
    with ExitStack() as stack:
        for role, flaw in flaws.items():
            assert flaw is None or flaw in FLAWS[role], f"{role} has no flaw {flaw!r}"
            server: Listener | _ClosedPort
            if flaw == "closed port":
                server = _ClosedPort()
            else:
                implicit = role in IMPLICIT_TLS and flaw != "no TLS"
                talk = partial(_TALK[role], None if flaw == "no TLS" else flaw)
                server = Listener(talk, ctx, implicit_tls=implicit)
            stack.callback(server.close)
            scheme = "http" if role is Role.WEBMAIL else role.value
            lines.append(f'[endpoints.{role}]\nurl = "{scheme}://127.0.0.1:{server.port}"\n')
        path = directory / "target.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        yield path
