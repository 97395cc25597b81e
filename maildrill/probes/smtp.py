"""SMTP sessions and transactions on :class:`~maildrill.wire.Wire`, for behavioural checks.

Unlike a client library these helpers never hide a reply: each stage's reply is returned,
and the wire keeps the transcript. A transaction stops at the first refused stage.

Usage::

    with Wire.open(target, endpoint) as wire:
        ehlo = open_session(wire, target)                 # 220, EHLO (STARTTLS if asked)
        tx = transaction(wire, "a@x.test", ["user0001@example.test"], msg.data)
        tx.accepted, tx.refused_at, tx.final              # True, None, SMTPReply(250, …)
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field

from maildrill.dnsrecords.resolver import endpoint_addresses
from maildrill.errors import ProtocolError
from maildrill.greetings import smtp_greeting_problem
from maildrill.smtp_protocol import (
    EHLO_NAME,
    OK,
    SERVICE_READY,
    START_MAIL_INPUT,
    ehlo_keywords,
    is_positive,
)
from maildrill.target import Account, Endpoint, Target
from maildrill.wire import SMTPReply, Wire

__all__ = [
    "SmtpReplies",
    "authenticate",
    "delivery_timeout",
    "foreign_sender",
    "is_loopback_endpoint",
    "open_session",
    "send_data",
    "transaction",
]

SHOW_LIMIT = 4096  # message bytes shown line by line in a transcript; above, a summary


def open_session(wire: Wire, target: Target, *, starttls: bool = False) -> SMTPReply:
    """Greeting and EHLO (then STARTTLS and EHLO again if asked); the last EHLO reply.

    A greeting other than 220 or a refused EHLO/STARTTLS is
    :class:`~maildrill.errors.ProtocolError`: the probe could not get to what it tests
    (verdict error; GREET-SMTP and CAP-SMTP-* own those). A certificate the target's CA
    does not verify is noted and the session goes on unverified (:meth:`Wire.upgrade`).
    """

    def up_to_starttls(wire: Wire) -> SMTPReply:
        problem = smtp_greeting_problem(wire.read_smtp())
        if problem is not None:
            raise ProtocolError(f"{wire.host}: {problem}")
        ehlo = wire.smtp(f"EHLO {EHLO_NAME}")
        if ehlo.code != OK:
            raise ProtocolError(f"{wire.host}: EHLO answered {ehlo.code} {ehlo.text!r}")
        if starttls:
            if "STARTTLS" not in ehlo_keywords(ehlo):
                raise ProtocolError(f"{wire.host}: STARTTLS not offered")
            reply = wire.smtp("STARTTLS")
            if reply.code != SERVICE_READY:
                raise ProtocolError(f"{wire.host}: STARTTLS answered {reply.code} {reply.text!r}")
        return ehlo

    ehlo = up_to_starttls(wire)
    if starttls:
        wire.upgrade(target, up_to_starttls)
        ehlo = wire.smtp(f"EHLO {EHLO_NAME}")
        if ehlo.code != OK:
            raise ProtocolError(f"{wire.host}: EHLO over TLS answered {ehlo.code}")
    return ehlo


def authenticate(wire: Wire, account: Account) -> SMTPReply:
    """AUTH PLAIN with the account's login (RFC 4616); the transcript shows no secret."""
    blob = base64.b64encode(f"\0{account.local}\0{account.password}".encode()).decode()
    return wire.smtp(f"AUTH PLAIN {blob}")


@dataclass
class SmtpReplies:
    """The replies of one MAIL/RCPT/DATA transaction, up to the first refused stage."""

    mail: SMTPReply
    rcpts: list[SMTPReply] = field(default_factory=list)
    data: SMTPReply | None = None  # the 354 (or refusal) of DATA
    final: SMTPReply | None = None  # the reply to the end of data

    @property
    def accepted(self) -> bool:
        return self.final is not None and is_positive(self.final.code)

    @property
    def refused_at(self) -> str | None:
        """ "MAIL", "RCPT", "DATA" or "end of data" where a non-2xx/3xx reply came; or None."""
        if not is_positive(self.mail.code):
            return "MAIL"
        if not self.rcpts or any(not is_positive(r.code) for r in self.rcpts):
            return "RCPT"
        if self.data is not None and self.data.code != START_MAIL_INPUT:
            return "DATA"
        if self.final is not None and not is_positive(self.final.code):
            return "end of data"
        return None

    @property
    def last(self) -> SMTPReply:
        """The reply that decided the transaction (the refusal, or the final one)."""
        for reply in (self.final, self.data, *reversed(self.rcpts)):
            if reply is not None:
                return reply
        return self.mail


def transaction(
    wire: Wire,
    mail_from: str,
    rcpts: list[str],
    data: bytes | None,
    *,
    mail_params: str = "",
) -> SmtpReplies:
    """MAIL, RCPT for each recipient, then DATA and the message (unless ``data`` is None)."""
    params = f" {mail_params}" if mail_params else ""
    tx = SmtpReplies(wire.smtp(f"MAIL FROM:<{mail_from}>{params}"))
    if not is_positive(tx.mail.code):
        return tx
    for rcpt in rcpts:
        tx.rcpts.append(wire.smtp(f"RCPT TO:<{rcpt}>"))
    if data is None or tx.refused_at is not None:
        return tx
    tx.data = wire.smtp("DATA")
    if tx.data.code != START_MAIL_INPUT:
        return tx
    tx.final = send_data(wire, data)
    return tx


def send_data(wire: Wire, data: bytes) -> SMTPReply:
    """Send a message dot-stuffed (RFC 5321 §4.5.2) with <CRLF>.<CRLF>; the server's reply."""
    body = data if data.endswith(b"\r\n") else data + b"\r\n"
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    payload = stuffed + b".\r\n"
    if len(payload) <= SHOW_LIMIT:
        for line in payload.decode("latin-1").split("\r\n")[:-1]:
            wire.transcript.append(f"C: {line}")
        wire.send_raw(payload, shown="[end of the message above]")
    else:
        head = data[: data.find(b"\r\n\r\n")].decode("latin-1")
        for line in head.split("\r\n"):
            wire.transcript.append(f"C: {line}")
        wire.send_raw(payload, shown=f"[body: {len(payload) - len(head)} more bytes, then .]")
    return wire.read_smtp()


def is_loopback_endpoint(target: Target, endpoint: Endpoint) -> bool:
    """Whether the endpoint's first node is on 127.0.0.0/8 (where a source can be chosen)."""
    address = endpoint_addresses(target, endpoint)[0][0]
    return ipaddress.ip_address(address).is_loopback


def foreign_sender(target: Target, local: str = "maildrill-probe") -> str:
    """An envelope sender outside the target's domain (the declared relay-test domain)."""
    return f"{local}@{target.expect.relay_test_domain}"


def delivery_timeout(target: Target) -> float:
    """How long a check waits for an accepted message to show up: the target's delivery
    SLO, capped so a lost message cannot stall the run."""
    return min(target.slo.delivery_p99_s, 60.0)
