"""AUTH is neither advertised nor accepted before STARTTLS (behavioural: AUTH is tried)."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.probes.smtp import open_session
from maildrill.smtp_protocol import AUTH_CHALLENGE, ehlo_keywords
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire


@control(
    "HYG-AUTH-PLAINTEXT",
    "SMTP AUTH is neither advertised nor accepted before STARTTLS",
    severity="high",
    reference="RFC 4954 §4 (AUTH over an unprotected channel), RFC 8314 §3; seed S14",
    roles=[Role.SUBMISSION, Role.SMTP],
)
def test_no_auth_before_starttls(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("plaintext session", wire.transcript)
        ehlo = open_session(wire, target)
        keywords = ehlo_keywords(ehlo)
        advertised = "AUTH" in keywords
        # no credentials are sent: a 334 challenge already shows the mechanism is open
        started = []
        for mechanism in ("PLAIN", "LOGIN"):
            reply = wire.smtp(f"AUTH {mechanism}")
            if reply.code == AUTH_CHALLENGE:
                started.append(f"AUTH {mechanism} -> 334")
                wire.smtp("*")  # RFC 4954 §4: cancel the exchange
        wire.smtp("QUIT")
    expect(not advertised, f"EHLO before STARTTLS advertises AUTH {keywords.get('AUTH')!r}")
    expect(not started, f"AUTH starts before STARTTLS: {started}")
