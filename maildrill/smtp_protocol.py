"""SMTP protocol basics shared by the probes, the conformance checks and the load client:
named reply codes (RFC 5321 §4.2.2, §4.2.3; RFC 4954 §6 for AUTH), their classes, the name
maildrill greets with and the EHLO reply's keywords.

Usage::

    if reply.code != SERVICE_READY: ...
    if is_permanent(reply.code): ...          # 5yz: the server refused for good
    wire.smtp(f"EHLO {EHLO_NAME}")
    ehlo_keywords(reply)["SIZE"]              # "10240000"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maildrill.wire import SMTPReply

__all__ = [
    "AUTH_CHALLENGE",
    "AUTH_SUCCEEDED",
    "CANNOT_VRFY",
    "EHLO_NAME",
    "OK",
    "SERVICE_READY",
    "START_MAIL_INPUT",
    "SYNTAX_ERROR",
    "WILL_FORWARD",
    "ehlo_keywords",
    "is_permanent",
    "is_positive",
]

EHLO_NAME = "maildrill.invalid"  # RFC 2606: never a real host

# -- reply codes (the names follow RFC 5321 §4.2.2's texts) -----------------------------------
SERVICE_READY = 220  # the greeting; also "ready to start TLS" (RFC 3207 §4)
AUTH_SUCCEEDED = 235  # RFC 4954 §6: authentication successful
OK = 250  # requested mail action okay, completed
WILL_FORWARD = 251  # user not local; will forward
CANNOT_VRFY = 252  # cannot VRFY user, but will accept the message (RFC 5321 §3.5.3)
AUTH_CHALLENGE = 334  # RFC 4954 §4: a server challenge; the exchange has started
START_MAIL_INPUT = 354  # start mail input; end with <CRLF>.<CRLF>
SYNTAX_ERROR = 500  # syntax error, command unrecognized (also "line too long", §4.5.3.1.4)


def is_positive(code: int) -> bool:
    """2yz, Positive Completion (RFC 5321 §4.2.1): the command did what was asked."""
    return 200 <= code < 300


def is_permanent(code: int) -> bool:
    """5yz, Permanent Negative Completion (RFC 5321 §4.2.1): refused, not to be retried."""
    return 500 <= code < 600


def ehlo_keywords(reply: SMTPReply) -> dict[str, str]:
    """EHLO extensions as {KEYWORD: parameters} (RFC 5321 §4.1.1.1; line 1 is the greeting).

    Example: ``"250-mx.example.test / 250 SIZE 10240000"`` → ``{"SIZE": "10240000"}``.
    """
    found: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.partition(" ")
        found[keyword.upper()] = params
    return found
