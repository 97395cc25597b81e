"""S9: each service greets as its protocol requires, without a stall."""

from __future__ import annotations

import re
from http import HTTPStatus

from maildrill.controls.api import Evidence, control, expect, subject
from maildrill.greetings import imap_greeting_problem, pop3_greeting_problem, smtp_greeting_problem
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

# RFC 5321 §4.3.1: the greeting's first word is the server's fully qualified domain name
# (or an address literal)
_FQDN_OR_LITERAL = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\.?)$")


@control(
    "GREET-SMTP",
    "SMTP greets with 220 and its host name",
    severity="high",
    reference="RFC 5321 §4.2, §4.3.1; seed S9",
    roles=[Role.SMTP, Role.SUBMISSION, Role.SMTPS],
)
def test_smtp_greeting(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        with subject("greeting"):
            reply = wire.read_smtp()
        problem = smtp_greeting_problem(reply)
        expect(problem is None, f"{problem}")
        first_word = reply.lines[0].split(" ", 1)[0]
        expect(
            _FQDN_OR_LITERAL.match(first_word),
            f"greeting does not start with a host name: {reply.lines[0]!r}",
        )
        wire.send_line("QUIT")  # the answer is not this control's business


@control(
    "GREET-IMAP",
    "IMAP greets with an untagged OK (not PREAUTH, not BYE)",
    severity="high",
    reference="RFC 9051 §7.1.1, §7.1.5; seed S9",
    roles=[Role.IMAP, Role.IMAPS],
)
def test_imap_greeting(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        with subject("greeting"):
            greeting = wire.read_line()
        problem = imap_greeting_problem(greeting)  # PREAUTH: logged in without credentials
        expect(problem is None, f"{problem}")
        wire.send_line("md1 LOGOUT")


@control(
    "GREET-POP3",
    "POP3 greets with +OK",
    severity="high",
    reference="RFC 1939 §4; seed S9",
    roles=[Role.POP3, Role.POP3S],
)
def test_pop3_greeting(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        with subject("greeting"):
            greeting = wire.read_line()
        problem = pop3_greeting_problem(greeting)
        expect(problem is None, f"{problem}")
        wire.send_line("QUIT")


@control(
    "GREET-HTTP",
    "Webmail answers HTTP without a server error",
    severity="high",
    reference="RFC 9110 §15; seed S2, S9",
    roles=[Role.WEBMAIL],
)
def test_webmail_answers(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("exchange", wire.transcript)
        wire.send_raw(
            f"GET / HTTP/1.1\r\nHost: {endpoint.host}\r\nConnection: close\r\n\r\n".encode(),
            shown=f"GET / HTTP/1.1 (Host: {endpoint.host})",
        )
        with subject("the answer to GET /"):
            status = wire.read_line()
        match = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", status)
        expect(match, f"not an HTTP status line: {status!r}")
        assert match is not None
        code = int(match.group(1))
        expect(code < HTTPStatus.INTERNAL_SERVER_ERROR, f"webmail answered {status!r}")
