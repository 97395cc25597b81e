"""The inbound MX advertises a SIZE limit and enforces it (RFC 1870)."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.probes.inbound import Inbound, has_mailbox
from maildrill.probes.messages import build
from maildrill.probes.smtp import foreign_sender, open_session, transaction
from maildrill.smtp_protocol import ehlo_keywords, is_permanent
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

MAX_UPLOAD = 64 * 1024 * 1024  # beyond this the undeclared-size half is skipped (run time)


@control(
    "HYG-SIZE",
    "SIZE is advertised, and a message over it is refused (declared and undeclared)",
    severity="medium",
    reference="RFC 1870 §4, §6.1 (552 for a declared size), §6.3; RFC 5321 §4.5.3.1.10",
    roles=[Role.SMTP],
)
def test_size_advertised_and_enforced(
    target: Target, endpoint: Endpoint, evidence: Evidence
) -> None:
    account = target.account(0)
    sender = foreign_sender(target)
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("declared size", wire.transcript)
        ehlo = open_session(wire, target)
        params = ehlo_keywords(ehlo).get("SIZE")
        expect(params is not None, "EHLO does not advertise SIZE")
        assert params is not None
        expect(params.strip().isdigit() and int(params) > 0, f"SIZE without a limit: {params!r}")
        limit = int(params)
        declared = target.expect.max_message_size
        if declared is not None:
            expect(limit <= declared, f"SIZE {limit} exceeds the declared {declared}")
        tx = transaction(wire, sender, [account.address], None, mail_params=f"SIZE={limit + 1}")
        wire.smtp("QUIT")
    expect(
        tx.refused_at in ("MAIL", "RCPT") and is_permanent(tx.last.code),
        f"MAIL with SIZE={limit + 1} answered {tx.last.code} {tx.last.text!r}, "
        "expected 552 (RFC 1870 §6.1)",
    )
    if limit > MAX_UPLOAD:
        evidence.text("undeclared size", f"skipped: SIZE {limit} > {MAX_UPLOAD} bytes")
        return
    # a client that does not declare the size: the server must still stop at the limit
    filler = ("x" * 998 + "\r\n") * (limit // 1000 + 64)
    msg = build("plain", sender=sender, recipient=account.address, extra_body=filler)
    with Inbound(target, endpoint, account) as probe:
        evidence.transcript("undeclared size", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        big = probe.send(msg, sender=sender)
        if big.accepted and has_mailbox(target):
            probe.find(msg.token, within=10.0)  # to delete it
        elif big.accepted:
            evidence.text("clean-up", "no imap endpoint: the accepted message stays delivered")
        expect(
            not big.accepted and is_permanent(big.last.code),
            f"a {len(msg.data)}-byte message (SIZE {limit}) answered "
            f"{big.last.code} {big.last.text!r} at {big.refused_at or 'end of data'}",
        )
