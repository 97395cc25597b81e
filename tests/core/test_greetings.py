"""maildrill.greetings: the one rule the GREET-* controls, preflight and the probes apply."""

from __future__ import annotations

import pytest

from maildrill.greetings import imap_greeting_problem, pop3_greeting_problem, smtp_greeting_problem
from maildrill.wire import SMTPReply


@pytest.mark.parametrize(
    ("code", "opens"),
    [(220, True), (554, False), (421, False), (250, False)],  # RFC 5321 §4.2, §3.1
)
def test_smtp_greeting(code: int, opens: bool) -> None:
    problem = smtp_greeting_problem(SMTPReply(code, ["mx.example.test ready"]))
    assert (problem is None) is opens
    if not opens:
        assert problem == f"greeting was {code} 'mx.example.test ready', expected 220"


@pytest.mark.parametrize(
    ("line", "opens", "opens_logged_in"),
    [
        ("* OK mx.example.test IMAP4rev1 ready", True, True),
        ("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready", True, True),
        ("* ok", True, True),  # RFC 9051 §4: status words are case-insensitive
        ("* PREAUTH logged in as user0001", False, True),  # §7.1.4
        ("* BYE too busy", False, False),  # §7.1.5
        ("* OKAY ready", False, False),  # not the OK status word
        ("+OK POP3 ready", False, False),
    ],
)
def test_imap_greeting(line: str, opens: bool, opens_logged_in: bool) -> None:
    assert (imap_greeting_problem(line) is None) is opens
    assert (imap_greeting_problem(line, preauth=True) is None) is opens_logged_in
    if not opens:
        assert imap_greeting_problem(line) == f"greeting was {line!r}, expected * OK"


def test_pop3_greeting_and_a_long_greeting_is_shortened() -> None:
    assert pop3_greeting_problem("+OK POP3 ready") is None
    assert pop3_greeting_problem("-ERR busy") == "greeting was '-ERR busy', expected +OK"
    problem = pop3_greeting_problem("x" * 500)
    assert problem is not None and len(problem) < 200 and "…" in problem
