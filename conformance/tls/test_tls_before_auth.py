"""S14: where the target file says TLS is required, the plaintext port offers and accepts
no authentication before STARTTLS (RFC 3207 §4.1 / RFC 4954 §4, RFC 9051 LOGINDISABLED,
RFC 2595 §4 / RFC 2449 USER)."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.smtp_protocol import AUTH_CHALLENGE, EHLO_NAME, ehlo_keywords, is_permanent
from maildrill.target import Endpoint, Role, Target
from maildrill.tls.scan import STARTTLS_ROLES
from maildrill.wire import Wire


def _smtp(wire: Wire) -> list[str]:
    problems = []
    wire.read_smtp()
    ehlo = wire.smtp(f"EHLO {EHLO_NAME}")
    keywords = ehlo_keywords(ehlo)
    auth = [f"{k} {keywords[k]}".rstrip() for k in ("AUTH", "AUTH=") if k in keywords]
    if auth:
        problems.append(f"EHLO advertises {auth[0]!r} before STARTTLS")
    # no credentials are sent: a 334 challenge already shows AUTH is open (RFC 4954 §4)
    reply = wire.smtp("AUTH PLAIN")
    if reply.code == AUTH_CHALLENGE:
        wire.smtp("*")  # RFC 4954 §4: cancel the exchange
        problems.append("AUTH PLAIN before STARTTLS got a 334 challenge")
    elif not is_permanent(reply.code):
        problems.append(f"AUTH PLAIN before STARTTLS answered {reply.code} {reply.text!r}")
    wire.smtp("QUIT")
    return problems


def _imap(wire: Wire) -> list[str]:
    problems = []
    wire.read_line()
    _, lines = wire.imap("CAPABILITY")
    caps = {w.upper() for ln in lines if ln.upper().startswith("* CAPABILITY") for w in ln.split()}
    if "LOGINDISABLED" not in caps:
        problems.append("CAPABILITY before STARTTLS lacks LOGINDISABLED (RFC 9051 §6.2.3)")
    offered = sorted(c for c in caps if c.startswith("AUTH="))
    if offered:
        problems.append(f"CAPABILITY before STARTTLS offers {', '.join(offered)}")
    wire.send_line("auth1 AUTHENTICATE PLAIN")
    line = wire.read_line()
    if line.startswith("+"):
        wire.send_line("*")  # RFC 9051 §6.2.2: cancel
        wire.read_line()
        problems.append("AUTHENTICATE PLAIN before STARTTLS got a continuation")
    elif not line.upper().startswith(("AUTH1 NO", "AUTH1 BAD")):
        problems.append(f"AUTHENTICATE PLAIN before STARTTLS answered {line!r}")
    wire.imap("LOGOUT")
    return problems


def _pop3(wire: Wire) -> list[str]:
    problems = []
    wire.read_line()
    ok, lines = wire.pop3("CAPA", multiline=True)
    caps = [ln.upper() for ln in lines[1:]] if ok else []
    if "USER" in caps:
        problems.append("CAPA before STLS lists USER (RFC 2449 §6.8)")
    sasl = [c for c in caps if c.startswith("SASL ") and c.split()[1:]]
    if sasl:
        problems.append(f"CAPA before STLS offers {sasl[0]!r}")
    # a made-up name: a server that enforces TLS refuses USER itself (RFC 2595 §4)
    ok, reply = wire.pop3("USER maildrill-probe")
    if ok:
        problems.append(f"USER before STLS answered {reply[0]!r}")
    wire.pop3("QUIT")
    return problems


_PROBES = {Role.SMTP: _smtp, Role.SUBMISSION: _smtp, Role.IMAP: _imap, Role.POP3: _pop3}


@control(
    "TLS-BEFORE-AUTH",
    "No authentication before STARTTLS where the policy requires TLS",
    severity="critical",
    reference="seed S14; RFC 3207 §4.1, RFC 4954 §4; RFC 9051 §6.2.3 (LOGINDISABLED); "
    "RFC 2595 §4; RFC 8314 §3",
    roles=STARTTLS_ROLES,
)
def test_tls_before_auth(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    if not endpoint.starttls_required:
        not_applicable(
            f"the target file does not require TLS before AUTH on {endpoint} "
            "(starttls_required = false)"
        )
    assert endpoint.role is not None
    with Wire.open(target, endpoint, tls=False) as wire:
        evidence.transcript("plaintext session", wire.transcript)
        problems = _PROBES[endpoint.role](wire)
    expect(not problems, "; ".join(problems))
