"""VRFY and EXPN confirm no user: recipients cannot be enumerated."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.probes.messages import new_token
from maildrill.probes.smtp import open_session
from maildrill.smtp_protocol import OK, WILL_FORWARD
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

CONFIRMS = (OK, WILL_FORWARD)  # RFC 5321 §3.5.3: 250/251 confirm; 252 "cannot verify" does not


@control(
    "HYG-VRFY",
    "VRFY and EXPN do not confirm that a user exists",
    severity="medium",
    reference="RFC 5321 §3.5.3, §7.3; RFC 2505 §2.11",
    roles=[Role.SMTP],
)
def test_vrfy_expn_confirm_no_user(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    existing = target.account(0)
    missing = f"{new_token()}@{target.domain}"
    rows = [["command", "reply"]]
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("session", wire.transcript)
        evidence.table("replies", rows)
        open_session(wire, target)
        replies = {}
        for command in (
            f"VRFY {existing.local}",
            f"VRFY {existing.address}",
            f"VRFY {missing}",
            f"EXPN {existing.local}",
            f"EXPN {existing.address}",
            f"EXPN {missing}",
        ):
            reply = wire.smtp(command)
            replies[command] = reply.code
            rows.append([command, f"{reply.code} {reply.text}"])
        wire.smtp("QUIT")
    confirmed = [cmd for cmd, code in replies.items() if code in CONFIRMS]
    expect(not confirmed, f"the server confirms users: {confirmed}")
    for verb in ("VRFY", "EXPN"):
        codes = {cmd: code for cmd, code in replies.items() if cmd.startswith(verb)}
        # different answers for an existing and a missing user enumerate just as well
        expect(
            len(set(codes.values())) == 1,
            f"{verb} answers an existing and a missing user differently: {codes}",
        )
