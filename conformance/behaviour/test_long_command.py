"""S18: a MAIL FROM of 1,000+ characters is refused, and the server keeps serving."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, subject
from maildrill.errors import TargetError
from maildrill.probes.smtp import open_session
from maildrill.smtp_protocol import OK, is_permanent
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

LOCAL_PART_LENGTH = 1024  # seed S18: "MAIL FROM: followed by 1000+ characters"


@control(
    "HYG-LONG-COMMAND",
    "An over-long MAIL FROM (1,000+ characters) gets 5xx and the server still serves",
    severity="high",
    reference="RFC 5321 §4.5.3.1.3 (path ≤ 256), §4.5.3.1.4 (command line ≤ 512); seed S18",
    roles=[Role.SMTP],
)
def test_long_mail_from_refused(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    address = f"{'a' * LOCAL_PART_LENGTH}@{target.expect.relay_test_domain}"
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("attack session", wire.transcript)
        open_session(wire, target)
        try:
            reply = wire.smtp(f"MAIL FROM:<{address}>")
        except TargetError as exc:
            reply = None
            dropped = str(exc)
        if reply is not None:
            expect(
                is_permanent(reply.code),
                f"MAIL FROM with a {len(address)}-character address answered "
                f"{reply.code} {reply.text!r}, expected 5xx",
            )
        else:
            expect(False, f"no reply to the over-long MAIL FROM: {dropped}")
    # the server answered a moment ago: one that is gone now did not survive the attack
    with subject("next session"), Wire.open(target, endpoint) as wire:
        evidence.transcript("next session", wire.transcript)
        open_session(wire, target)  # 220 and EHLO 250, or the check fails
        noop = wire.smtp("NOOP")
        expect(noop.code == OK, f"next session: NOOP answered {noop.code}")
        wire.smtp("QUIT")
