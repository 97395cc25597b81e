"""An instrumented SMTP client (smtplib; under Locust's gevent it is the fastest, FACTS.md).

Each phase (connect, tls, banner, ehlo, starttls, auth, mail, rcpt, data) and the whole
transaction is one request event of type ``smtp`` (``smtps`` on implicit TLS). ``tls``
(implicit TLS) and ``starttls`` time the handshake alone, so their failures are the TLS
handshake failure rate (seed S22)::

    client = SmtpClient(meter_fire, nodes, tls=ctx, server_name="mx.example.test")
    outcome = client.send(b"From: ...", "a@example.test", ["b@example.test"])
    outcome.accepted_at     # time.time() when the 250 after DATA arrived, else None

A session is reused for ``per_session`` messages (then QUIT and a new one); any failure
drops the connection so the next message starts clean. ``timeout`` bounds each message's
whole transaction (connecting, the greeting and EHLO included when it opens the session),
not each read; a polite QUIT waits at most :data:`QUIT_WAIT_S` for its reply. A recipient
refused at RCPT (a reply code) does not end the transaction while another recipient was
accepted: the refusal is in ``outcome.refused`` and the message goes to the others (RFC 5321
§3.3). Where the server advertises SIZE, MAIL FROM declares the message's size (RFC 1870
§6), so a message over the limit is refused at MAIL with 552 before its bytes are sent.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field

from maildrill.clients.events import Fire, Meter, Transaction
from maildrill.clients.nodes import NodeCycle, connect, node_name
from maildrill.errors import PhaseError, ProtocolError, ReplyError
from maildrill.smtp_protocol import (
    AUTH_SUCCEEDED,
    OK,
    SERVICE_READY,
    START_MAIL_INPUT,
    WILL_FORWARD,
)

__all__ = ["SmtpClient", "SmtpOutcome", "data_payload"]

# nothing waits on QUIT's reply: a server slow to answer it must not hold the sender
QUIT_WAIT_S = 1.0


@dataclass(frozen=True)
class SmtpOutcome:
    transaction: Transaction
    accepted_at: float | None
    node: str
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> reply code

    @property
    def ok(self) -> bool:
        return self.transaction.ok


class SmtpClient:
    def __init__(
        self,
        fire: Fire,
        nodes: NodeCycle,
        *,
        tls: ssl.SSLContext | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
        timeout: float = 10.0,
        per_session: int = 10,
        helo_name: str = "maildrill.test",
        traffic_class: str = "",
    ) -> None:
        self._fire = fire
        self._nodes = nodes
        self._tls = tls
        self._starttls = starttls
        self._implicit = implicit_tls
        self._login = login
        self._timeout = timeout
        self._per_session = max(1, per_session)
        self._helo = helo_name
        self._class = traffic_class
        self._smtp: smtplib.SMTP | None = None
        self._meter: Meter | None = None
        self._sent_in_session = 0
        self.request_type = "smtps" if implicit_tls else "smtp"

    def send(
        self, message: bytes, sender: str, recipients: list[str], *, start_ns: int | None = None
    ) -> SmtpOutcome:
        """Send one message; never raises. ``start_ns`` is an open-model intended start."""
        accepted_at: float | None = None
        refused: dict[str, str] = {}
        address = self._nodes.next() if self._smtp is None else None
        meter = self._meter
        if meter is None or address is not None:
            meter = Meter(
                self._fire,
                self.request_type,
                node=node_name(address or ("", 0)),
                traffic_class=self._class,
            )
        with meter.transaction("transaction", start_ns=start_ns, timeout=self._timeout) as tx:
            if address is not None:
                self._open(meter, address)
            smtp = self._smtp
            assert smtp is not None
            # the commands are written directly (smtplib's mail/rcpt/data parse the
            # addresses with email.utils and run two regexes over every message body: a
            # fifth of the generator's CPU at 4 KB, for addresses and bodies we built)
            with meter.phase("mail"):
                # SIZE (RFC 1870 §6) lets a server refuse a too-large message before DATA
                size = f" SIZE={len(message)}" if "size" in smtp.esmtp_features else ""
                _write(smtp, f"MAIL FROM:<{sender}>{size}\r\n")
                code, text = smtp.getreply()
                _expect(code, text, OK)
            for rcpt in recipients:
                try:
                    with meter.phase("rcpt"):
                        _write(smtp, f"RCPT TO:<{rcpt}>\r\n")
                        code, text = smtp.getreply()
                        _expect(code, text, OK, WILL_FORWARD)
                except PhaseError as exc:
                    if not exc.kind.isdigit():
                        raise  # the connection broke: the whole transaction failed
                    refused[rcpt] = exc.kind
            if refused and len(refused) == len(recipients):
                raise PhaseError(refused[recipients[-1]], "every recipient refused")
            with meter.phase("data"):
                _write(smtp, b"DATA\r\n")
                code, text = smtp.getreply()
                _expect(code, text, START_MAIL_INPUT)
                _write(smtp, data_payload(message))
                code, text = smtp.getreply()
                _expect(code, text, OK)
                accepted_at = time.time()
            self._sent_in_session += 1
        if not tx.ok:
            self.close(polite=tx.kind.isdigit())
        elif self._sent_in_session >= self._per_session:
            self.close(polite=True)
        return SmtpOutcome(tx, accepted_at, meter.node, refused)

    def _open(self, meter: Meter, address: tuple[str, int]) -> None:
        self._meter = meter
        smtp = smtplib.SMTP(local_hostname=self._helo, timeout=self._timeout)
        # smtplib uses _host as the TLS server name; connect to the node's address instead
        smtp._host = self._nodes.host  # type: ignore[attr-defined]
        self._smtp = smtp
        self._sent_in_session = 0
        with meter.phase("connect"):
            sock = connect(address, self._timeout)
            smtp.sock = sock
        if self._implicit:
            assert self._tls is not None
            with meter.phase("tls"):
                smtp.sock = self._tls.wrap_socket(sock, server_hostname=self._nodes.host)
        with meter.phase("banner"):
            code, text = smtp.getreply()
            _expect(code, text, SERVICE_READY)
        with meter.phase("ehlo"):
            code, text = smtp.ehlo()
            _expect(code, text, OK)
        if self._starttls and not self._implicit:
            with meter.phase("starttls"):
                code, text = smtp.starttls(context=self._tls)
                _expect(code, text, SERVICE_READY)
            with meter.phase("ehlo"):
                code, text = smtp.ehlo()
                _expect(code, text, OK)
        if self._login is not None:
            with meter.phase("auth"):
                code, text = smtp.login(*self._login)
                _expect(code, text, AUTH_SUCCEEDED)

    def close(self, *, polite: bool = True) -> None:
        smtp, self._smtp, self._meter = self._smtp, None, None
        if smtp is None:
            return
        # a connection being dropped may be broken already: QUIT then fails as a socket error
        # or a disconnect (smtplib), which ends nothing that was still to be measured
        with contextlib.suppress(OSError, smtplib.SMTPException):
            if polite:
                if smtp.sock is not None:
                    smtp.sock.settimeout(min(self._timeout, QUIT_WAIT_S))
                smtp.quit()
        with contextlib.suppress(OSError):  # closing a socket the server reset
            smtp.close()


def _write(smtp: smtplib.SMTP, data: str | bytes) -> None:
    """``sendall`` by hand: gevent's asks the kernel for the socket's buffer size on every
    call, a syscall per SMTP command that showed as a sixth of the generator's profile."""
    sock = smtp.sock
    if sock is None:
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    view = memoryview(data.encode("ascii") if isinstance(data, str) else data)
    while view:
        view = view[sock.send(view) :]


def data_payload(message: bytes) -> bytes:
    """What follows DATA: the message with leading dots doubled (RFC 5321 §4.5.2), ending
    in CRLF, then the end-of-data line ``.CRLF``. Line ends are sent as given (as smtplib
    does for bytes); the dot check is a C-speed scan, not a regex, for bodies without dots::

        data_payload(b"a\r\n.b\r\n")     # b"a\r\n..b\r\n.\r\n"
    """
    if message.startswith(b".") or b"\n." in message:
        message = re.sub(rb"(?m)^\.", b"..", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


def _expect(code: int, text: bytes | str, *good: int) -> None:
    if code < 200:  # smtplib's -1: the reply did not start with a code (RFC 5321 §4.2)
        raise ProtocolError(repr(text)[:120])
    if code not in good:
        message = text.decode(errors="replace") if isinstance(text, bytes) else text
        raise ReplyError(code, message[:120])
