"""A line-level client for SMTP, IMAP and POP3 that records a transcript.

Conformance checks need to say exactly what was sent and answered, and sometimes to send
what a well-behaved client library never would (a 1,000-character ``MAIL FROM``, a bare LF
before the end-of-data dot, a command pipelined behind ``STARTTLS``). This client does only
that: connect, read replies, send lines, upgrade to TLS, and keep the transcript with
credentials redacted.

Usage::

    with Wire.open(target, endpoint) as w:
        w.read_smtp()                       # (220, ["mx1.example.test ESMTP"])
        code, lines = w.smtp("EHLO maildrill.test")
        w.transcript                        # ["S: 220 ...", "C: EHLO ...", ...]

A certificate the target's CA file does not verify (a wrong name, a weak key) is the CERT-*
controls' subject, not a behavioural probe's: :meth:`Wire.open` and :meth:`Wire.upgrade`
record the rejection in the transcript and in ``certificate_rejected``, and carry on over a
new connection without verification, so one certificate flaw fails only its own controls.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from maildrill.dnsrecords.resolver import endpoint_addresses
from maildrill.errors import (
    Blocked,
    ProtocolError,
    TargetTimeout,
    TargetUnreachable,
    TLSFailure,
)
from maildrill.target import Endpoint, Target
from maildrill.tls.context import tls_context

__all__ = ["SMTPReply", "Wire", "blocked_endpoints", "blocked_reason", "raise_if_blocked"]

MAX_LINE = 64 * 1024  # a longer reply line is a protocol error, not something to buffer
_SECRET = re.compile(
    r"^(?P<cmd>(?:\S+\s+)?(?:AUTH\s+\S+|LOGIN|PASS|AUTHENTICATE\s+\S+))(?P<rest>\s.*)?$",
    re.IGNORECASE,
)


# (role, host, port) -> why no check may open it now; shared by every thread of the check
_BLOCKED: dict[tuple[str, str, int], str] = {}


def _key(endpoint: Endpoint) -> tuple[str, str, int]:
    return (str(endpoint.role), endpoint.host, endpoint.port)


@contextmanager
def blocked_endpoints(reasons: dict[Endpoint, str]) -> Iterator[None]:
    """While inside, opening one of these endpoints raises :class:`Blocked` with its reason:
    a check learns at once what an earlier probe learned the slow way (a hang, garbage).

    Usage: ``with blocked_endpoints({smtp_endpoint: "blocked by GREET-SMTP[smtp]: …"}):``
    """
    keyed = {_key(endpoint): reason for endpoint, reason in reasons.items()}
    _BLOCKED.update(keyed)
    try:
        yield
    finally:
        for key in keyed:
            _BLOCKED.pop(key, None)


def blocked_reason(endpoint: Endpoint) -> str | None:
    """Why ``endpoint`` may not be opened right now (see :func:`blocked_endpoints`), or None."""
    return _BLOCKED.get(_key(endpoint))


def raise_if_blocked(endpoint: Endpoint) -> None:
    reason = blocked_reason(endpoint)
    if reason is not None:
        raise Blocked(reason)


@dataclass
class SMTPReply:
    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return " / ".join(self.lines)


@dataclass
class Wire:
    """One connection to one node of an endpoint, with its transcript."""

    sock: socket.socket
    host: str  # the endpoint's host name, for SNI and certificate checks
    address: tuple[str, int]
    timeout: float
    transcript: list[str] = field(default_factory=list)
    _buf: bytes = b""
    redact_next: bool = False
    certificate_rejected: str | None = None  # why verification failed, when it did
    source: str | None = None  # the local address connected from, if chosen

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls,
        target: Target,
        endpoint: Endpoint,
        *,
        timeout: float = 10.0,
        tls: bool | None = None,
        verify: bool = True,
        source: str | None = None,
    ) -> Iterator[Wire]:
        """Connect to the first node of ``endpoint``; implicit-TLS ports are wrapped.

        ``verify=True`` verifies the certificate and, if it is rejected, goes on unverified
        (see the module docstring); ``verify=False`` never verifies.
        """
        raise_if_blocked(endpoint)
        address = endpoint_addresses(target, endpoint)[0]
        wire = cls.connect(address, endpoint.host, timeout=timeout, source=source)
        try:
            if endpoint.implicit_tls if tls is None else tls:
                if verify:
                    wire.upgrade(target, lambda _: None)
                else:
                    wire.start_tls(tls_context(target, verify=False))
            yield wire
        finally:
            wire.close()

    @classmethod
    def connect(
        cls, address: tuple[str, int], host: str, *, timeout: float, source: str | None = None
    ) -> Wire:
        try:
            sock = socket.create_connection(
                address, timeout=timeout, source_address=(source, 0) if source else None
            )
        except ConnectionRefusedError:
            raise TargetUnreachable(f"{host} ({address[0]}:{address[1]}) refused") from None
        except TimeoutError:
            raise TargetTimeout(f"{host} ({address[0]}:{address[1]}) connect timed out") from None
        except OSError as exc:
            raise TargetUnreachable(f"{host} ({address[0]}:{address[1]}): {exc}") from None
        wire = cls(sock=sock, host=host, address=address, timeout=timeout, source=source)
        wire.transcript.append(f"*: connected to {address[0]}:{address[1]} ({host})")
        return wire

    def start_tls(self, context: ssl.SSLContext) -> None:
        if self._buf:
            # bytes the server sent before the handshake: a STARTTLS-injection symptom
            self.transcript.append(f"!: {len(self._buf)} plaintext bytes buffered before TLS")
            self._buf = b""
        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            self.certificate_rejected = str(exc.verify_message)
            self.transcript.append(f"!: certificate rejected: {exc.verify_message}")
            raise TLSFailure(f"{self.host}: certificate rejected: {exc.verify_message}") from None
        except (ssl.SSLError, OSError) as exc:
            self.transcript.append(f"!: TLS handshake failed: {exc}")
            raise TLSFailure(f"{self.host}: TLS handshake failed: {exc}") from None
        tls = self.sock
        assert isinstance(tls, ssl.SSLSocket)
        self.transcript.append(f"*: TLS {tls.version()} {(tls.cipher() or ('?',))[0]}")

    def upgrade(self, target: Target, redo: Callable[[Wire], object]) -> None:
        """TLS now, verifying the certificate; if it is rejected, the rejection is noted,
        a new connection is made, ``redo`` repeats the plaintext part of the session on it
        (greeting, EHLO, STARTTLS), and the handshake is made without verification.

        Usage: ``wire.smtp("STARTTLS"); wire.upgrade(target, replay_up_to_starttls)``
        """
        try:
            self.start_tls(tls_context(target))
        except TLSFailure:
            if self.certificate_rejected is None:
                raise
            self.transcript.append(
                "*: the certificate is the CERT-* controls' subject: this probe goes on "
                "without certificate verification, on a new connection"
            )
            self.close()
            fresh = Wire.connect(self.address, self.host, timeout=self.timeout, source=self.source)
            self.sock, self._buf = fresh.sock, b""
            self.transcript.append(fresh.transcript[0])
            redo(self)
            self.start_tls(tls_context(target, verify=False))

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()

    # -- raw lines -------------------------------------------------------------------------

    def send_raw(self, data: bytes, *, shown: str | None = None) -> None:
        if shown is None:
            shown = data.decode("latin-1").rstrip("\r\n")
        if self.redact_next:
            shown, self.redact_next = "<credentials redacted>", False
        self.transcript.append(f"C: {_redact(shown)}")
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise TargetTimeout(f"{self.host}: send timed out") from None
        except OSError as exc:
            raise TargetUnreachable(f"{self.host}: connection lost while sending: {exc}") from None

    def send_line(self, line: str) -> None:
        self.send_raw(line.encode("utf-8") + b"\r\n", shown=line)

    def read_line(self) -> str:
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise ProtocolError(f"{self.host}: reply line longer than {MAX_LINE} bytes")
            if time.monotonic() > deadline:
                raise TargetTimeout(f"{self.host}: no reply within {self.timeout:g} s")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TargetTimeout(f"{self.host}: no reply within {self.timeout:g} s") from None
            except OSError as exc:
                raise TargetUnreachable(f"{self.host}: connection lost: {exc}") from None
            if not chunk:
                self.transcript.append("*: connection closed by server")
                raise ProtocolError(f"{self.host}: connection closed by server")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        self.transcript.append(f"S: {text}")
        return text

    def pending(self, wait: float = 0.3) -> bool:
        """Whether the server has sent something more (within ``wait`` seconds)."""
        if self._buf:
            return True
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            return False
        self._buf += chunk
        return True

    # -- SMTP (RFC 5321 §4.2: multiline replies are "code-text", the last "code text") ------

    def read_smtp(self) -> SMTPReply:
        lines: list[str] = []
        while True:
            line = self.read_line()
            if len(line) < 3 or not line[:3].isdigit():
                raise ProtocolError(f"{self.host}: not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return SMTPReply(int(line[:3]), lines)
            if line[3] != "-":
                raise ProtocolError(f"{self.host}: bad SMTP reply separator: {line[:80]!r}")

    def smtp(self, command: str) -> SMTPReply:
        self.send_line(command)
        return self.read_smtp()

    # -- IMAP (RFC 9051 §2.2.2: tagged completion after untagged data) ---------------------

    _tag = 0

    def imap(self, command: str) -> tuple[str, list[str]]:
        """Send a tagged command; returns (OK|NO|BAD, all lines including the tagged one)."""
        self._tag += 1
        tag = f"md{self._tag}"
        self.send_line(f"{tag} {command}")
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line.startswith(tag + " "):
                status = line.split(" ", 2)[1].upper()
                return status, lines

    # -- POP3 (RFC 1939 §3: +OK / -ERR, multi-line ends with ".") --------------------------

    def pop3(self, command: str, *, multiline: bool = False) -> tuple[bool, list[str]]:
        self.send_line(command)
        first = self.read_line()
        ok = first.startswith("+OK")
        lines = [first]
        if ok and multiline:
            while (line := self.read_line()) != ".":
                lines.append(line)
        return ok, lines


def _redact(shown: str) -> str:
    match = _SECRET.match(shown)
    if match and match.group("rest"):
        return f"{match.group('cmd')} <redacted>"
    return shown
