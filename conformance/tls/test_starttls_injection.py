"""STARTTLS command injection (CVE-2011-0411): a command pipelined in plaintext behind
STARTTLS must be discarded, not executed once TLS is up (RFC 3207 §4.2, RFC 2595 §3.1)."""

from __future__ import annotations

from collections.abc import Callable

from maildrill.controls.api import Evidence, blocked, control, expect
from maildrill.errors import TLSFailure
from maildrill.smtp_protocol import EHLO_NAME, SERVICE_READY
from maildrill.target import Endpoint, Role, Target
from maildrill.tls.context import tls_context
from maildrill.tls.scan import STARTTLS_ROLES
from maildrill.wire import Wire

WAIT_S = 1.0  # how long an unasked reply may take to show up after the handshake


def _smtp_starttls(wire: Wire, inject: bool) -> str | None:
    wire.read_smtp()
    wire.smtp(f"EHLO {EHLO_NAME}")
    # RFC 3207 §4.2: the server MUST discard any knowledge obtained before TLS
    wire.send_raw(b"STARTTLS\r\nNOOP\r\n" if inject else b"STARTTLS\r\n")
    reply = wire.read_smtp()
    return None if reply.code == SERVICE_READY else f"STARTTLS answered {reply.code} {reply.text!r}"


def _imap_starttls(wire: Wire, inject: bool) -> str | None:
    wire.read_line()
    wire.send_raw(b"inj1 STARTTLS\r\ninj2 NOOP\r\n" if inject else b"inj1 STARTTLS\r\n")
    while not (line := wire.read_line()).startswith("inj1 "):
        pass
    return None if line.upper().startswith("INJ1 OK") else f"STARTTLS answered {line!r}"


def _pop3_starttls(wire: Wire, inject: bool) -> str | None:
    wire.read_line()
    wire.send_raw(b"STLS\r\nNOOP\r\n" if inject else b"STLS\r\n")
    line = wire.read_line()
    return None if line.startswith("+OK") else f"STLS answered {line!r}"


_CAPS = {
    Role.SMTP: "CAP-SMTP-STARTTLS",
    Role.SUBMISSION: "CAP-SMTP-STARTTLS",
    Role.IMAP: "CAP-IMAP",
    Role.POP3: "CAP-POP3",
}
_STARTTLS: dict[Role, Callable[[Wire, bool], str | None]] = {
    Role.SMTP: _smtp_starttls,
    Role.SUBMISSION: _smtp_starttls,
    Role.IMAP: _imap_starttls,
    Role.POP3: _pop3_starttls,
}


def _clean_handshake(target: Target, endpoint: Endpoint, evidence: Evidence) -> str | None:
    """Whether STARTTLS works without injected bytes (None) or why it does not."""
    assert endpoint.role is not None
    with Wire.open(target, endpoint, tls=False) as wire:
        evidence.transcript("session without injection", wire.transcript)
        refused = _STARTTLS[endpoint.role](wire, False)
        if refused:
            return refused
        try:
            wire.start_tls(tls_context(target, verify=False))
        except TLSFailure as exc:
            return str(exc)
    return None


@control(
    "STARTTLS-INJECTION",
    "Commands pipelined before STARTTLS are not executed after the handshake",
    severity="high",
    reference="CVE-2011-0411; RFC 3207 §4.2 (SMTP); RFC 2595 §3.1, §4 (IMAP, POP3); RFC 8314 §4.1",
    roles=STARTTLS_ROLES,
)
def test_starttls_injection(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    assert endpoint.role is not None
    with Wire.open(target, endpoint, tls=False) as wire:
        evidence.transcript("session with NOOP pipelined behind STARTTLS", wire.transcript)
        refused = _STARTTLS[endpoint.role](wire, True)
        if refused:  # no STARTTLS at all: nothing to inject into (CAP-* own that finding)
            blocked(f"blocked by {_CAPS[endpoint.role]}[{endpoint.role}]: no STARTTLS: {refused}")
        try:
            # certificate problems are CERT-CHAIN's business; this only needs the session
            wire.start_tls(tls_context(target, verify=False))
        except TLSFailure as exc:
            # the injected bytes broke the handshake: not executed, but TLS must work at all
            clean = _clean_handshake(target, endpoint, evidence)
            if clean:  # TLS does not work at all here: TLS-VERSIONS owns that finding
                blocked(f"blocked by TLS-VERSIONS[{endpoint.role}]: no working STARTTLS: {clean}")
            evidence.text(
                "note", f"the handshake failed only with the injected bytes ({exc}): not executed"
            )
            return
        unasked = []
        while wire.pending(WAIT_S):
            unasked.append(wire.read_line())
        expect(
            not unasked,
            f"the server answered the plaintext NOOP inside TLS, unasked: {unasked!r}",
        )
        wire.transcript.append(f"*: nothing arrived unasked within {WAIT_S:g} s of the handshake")
