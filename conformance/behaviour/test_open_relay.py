"""Not an open relay: mail for a foreign domain is refused without AUTH, tricks included."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.probes.smtp import foreign_sender, open_session
from maildrill.smtp_protocol import is_positive
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire


def relay_recipients(local: str, foreign: str, own: str) -> list[tuple[str, str]]:
    """(trick, RCPT address) pairs that route to ``foreign`` through ``own``.

    RFC 5321 §3.6.1 (source routes), §4.1.2 (quoted local parts); the percent hack and
    bang paths are the legacy routing syntaxes open-relay testers have always tried.
    """
    return [
        ("plain", f"{local}@{foreign}"),
        ("percent hack", f"{local}%{foreign}@{own}"),
        ("source route", f"@{own}:{local}@{foreign}"),
        ("quoted local part", f'"{local}@{foreign}"@{own}'),
        ("bang path", f"{foreign}!{local}@{own}"),
        ("trailing dot", f"{local}@{foreign}."),
    ]


@control(
    "RELAY-OPEN",
    "Mail for a foreign domain is refused without AUTH (no open relay)",
    severity="critical",
    reference="RFC 5321 §3.6.2, §7.1; RFC 2505 §2; seed S15",
    roles=[Role.SMTP, Role.SUBMISSION],
)
def test_not_open_relay(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    foreign = target.expect.relay_test_domain
    rows = [["trick", "RCPT TO", "reply"]]
    relayed = []
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        evidence.table("recipients tried", rows)
        # submission: mail before STARTTLS is refused anyway; test the encrypted session,
        # the one a spammer with stolen nothing but a TLS stack would use
        ehlo = open_session(wire, target, starttls=endpoint.role == Role.SUBMISSION)
        del ehlo
        for trick, rcpt in relay_recipients("relay-victim", foreign, target.domain):
            mail = wire.smtp(f"MAIL FROM:<{foreign_sender(target)}>")
            if not is_positive(mail.code):
                mail = wire.smtp("MAIL FROM:<>")  # RFC 5321 §4.5.5: must be accepted
            if not is_positive(mail.code):
                # nothing can be relayed by a client that may not even start a transaction
                # (submission: 530 authentication required)
                rows.append(["(all)", "(not reached)", f"MAIL refused: {mail.code} {mail.text}"])
                break
            reply = wire.smtp(f"RCPT TO:<{rcpt}>")
            rows.append([trick, rcpt, f"{reply.code} {reply.text}"])
            if is_positive(reply.code):
                relayed.append(f"{trick} <{rcpt}> got {reply.code}")
            wire.smtp("RSET")  # never send DATA: nothing may leave through a relay
        wire.smtp("QUIT")
    expect(not relayed, f"{endpoint} accepts foreign recipients without AUTH: {relayed}")
