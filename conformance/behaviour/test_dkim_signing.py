"""S15: mail submitted on the submission port leaves DKIM-signed with a signature that verifies.

The key's size is DKIM-KEY-SIZE's subject (the published record): recorded here, not judged
a second time."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.probes.auth import verify_dkim
from maildrill.probes.inbound import Inbound, require_mailbox
from maildrill.probes.messages import build
from maildrill.target import Endpoint, Role, Target


@control(
    "AUTH-DKIM-SIGN",
    "Submitted mail arrives DKIM-signed with a signature that verifies",
    severity="high",
    reference="seed S15; RFC 6376 §3.3.3 (key sizes), RFC 8301 §3.2",
    roles=[Role.SUBMISSION, Role.SMTPS],
)
def test_submission_dkim_signed(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    require_mailbox(target)
    account = target.account(0)
    msg = build("plain", sender=account.address, recipient=account.address)
    with Inbound(target, endpoint, account) as probe:
        evidence.transcript("submission", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        tx = probe.send(
            msg, sender=account.address, starttls=not endpoint.implicit_tls, login=account
        )
        expect(tx.accepted, f"submission refused: {tx.last.code} {tx.last.text!r}")
        found = probe.find(msg.token, ("INBOX",))
        expect(found is not None, "the submitted message never arrived in INBOX")
        assert found is not None
        evidence.text("delivered headers", found.header_block())
        check = verify_dkim(target, found.raw)
    evidence.json(
        "DKIM",
        {
            "signed": check.signed,
            "verifies": check.ok,
            "d": check.domain,
            "s": check.selector,
            "key_bits": check.bits,
            "detail": check.detail,
        },
    )
    expect(check.signed, "the delivered message carries no DKIM-Signature")
    expect(
        check.ok,
        f"the DKIM signature (d={check.domain}, s={check.selector}) "
        f"does not verify: {check.detail}",
    )
