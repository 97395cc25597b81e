"""What a mail server must say first: SMTP's 220 (RFC 5321 §4.2, §4.3.1), IMAP's untagged
OK (RFC 9051 §7.1), POP3's +OK (RFC 1939 §4).

The one rule for everything that reads a greeting: the GREET-* controls (does the server
greet as it must?), preflight's health probe (can a session start at all?) and the probes
that open a session on the way to what they test. Each function says why the greeting does
not open a session, or None when it does.

Usage::

    smtp_greeting_problem(wire.read_smtp())    # None, or "greeting was 554 '…', expected 220"
    imap_greeting_problem("* OK [CAPABILITY IMAP4rev1] ready")     # None
    imap_greeting_problem("* PREAUTH welcome")  # "greeting was '* PREAUTH welcome', expected * OK"
    imap_greeting_problem("* PREAUTH welcome", preauth=True)       # None: a session, logged in
    pop3_greeting_problem("-ERR busy")          # "greeting was '-ERR busy', expected +OK"
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from maildrill.smtp_protocol import SERVICE_READY

if TYPE_CHECKING:
    from maildrill.wire import SMTPReply

__all__ = ["imap_greeting_problem", "pop3_greeting_problem", "smtp_greeting_problem"]

SHOWN = 120  # characters of a greeting quoted in a reason; the transcript has all of it

# RFC 9051 §7.1: "*" SP status word, then SP resp-text (perhaps a [response code] first) or
# nothing; OK opens the session, PREAUTH opens it already logged in, BYE refuses it
_IMAP_STATUS = re.compile(r"^\* (OK|PREAUTH|BYE)(?:[ \[]|$)", re.IGNORECASE)


def smtp_greeting_problem(reply: SMTPReply) -> str | None:
    """Why an SMTP greeting opens no session: any code but 220 (RFC 5321 §4.2; a 554
    refuses service, §3.1); None for 220."""
    if reply.code == SERVICE_READY:
        return None
    return f"greeting was {reply.code} {_shown(reply.text)}, expected {SERVICE_READY}"


def imap_greeting_problem(line: str, *, preauth: bool = False) -> str | None:
    """Why an IMAP greeting opens no session: BYE (RFC 9051 §7.1.5) or no IMAP greeting at
    all; PREAUTH (§7.1.4) too unless ``preauth`` (a session is open, but it was never asked
    for credentials). None for ``* OK``."""
    found = _IMAP_STATUS.match(line)
    status = found[1].upper() if found else None
    if status == "OK" or (status == "PREAUTH" and preauth):
        return None
    return f"greeting was {_shown(line)}, expected * OK"


def pop3_greeting_problem(line: str) -> str | None:
    """Why a POP3 greeting opens no session: anything but +OK (RFC 1939 §4; -ERR refuses)."""
    return None if line.startswith("+OK") else f"greeting was {_shown(line)}, expected +OK"


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")
