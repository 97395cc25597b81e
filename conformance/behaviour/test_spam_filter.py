"""S15 content filtering: GTUBE is stopped as the target's policy says, a clean message is
delivered untouched, EICAR is refused where the target runs anti-virus."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.probes.inbound import Inbound, require_mailbox, spam_tag
from maildrill.probes.mailbox import JUNK
from maildrill.probes.messages import build
from maildrill.probes.smtp import foreign_sender
from maildrill.smtp_protocol import is_permanent
from maildrill.target import Endpoint, Role, Target


@control(
    "FILTER-GTUBE",
    "Spam (GTUBE) is rejected at end of DATA, or tagged / sent to Junk, per expect.spam_action",
    severity="high",
    reference="seed S15 (content score ≥ 7.0); RFC 5321 §4.2.5; SpamAssassin GTUBE",
    roles=[Role.SMTP],
)
def test_gtube(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    action = target.expect.spam_action
    evidence.text("expected", f"expect.spam_action = {action}")
    account = target.account(0)
    msg = build("gtube", sender=foreign_sender(target), recipient=account.address)
    with Inbound(target, endpoint, account) as probe:
        evidence.transcript("smtp", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        tx = probe.send(msg, sender=foreign_sender(target))
        expect(
            tx.refused_at in (None, "end of data"),
            f"the probe was refused before its content was seen: {tx.refused_at} "
            f"{tx.last.code} {tx.last.text!r}",
        )
        if action == "reject":
            if not tx.accepted:
                expect(is_permanent(tx.last.code), f"GTUBE got {tx.last.code}, expected 5xx")
                return
            found = probe.find(msg.token)
            where = f"delivered to {found.folder}" if found else "not found in any folder"
            expect(False, f"GTUBE accepted ({tx.last.code} {tx.last.text!r}), {where}")
        expect(tx.accepted, f"GTUBE refused with {tx.last.code}, but spam_action is {action}")
        found = probe.find(msg.token)
        expect(found is not None, "GTUBE accepted but not delivered to INBOX or Junk in time")
        assert found is not None
        evidence.text("delivered headers", found.header_block())
        if action == "junk":
            expect(
                found.folder != "INBOX",
                f"GTUBE delivered to {found.folder}, expected the Junk folder",
            )
        else:
            tag = spam_tag(found)
            expect(tag is not None or found.folder != "INBOX", "GTUBE delivered untagged")


@control(
    "FILTER-CLEAN",
    "A clean message is delivered to INBOX without a spam flag (no false positive)",
    severity="high",
    reference="seed S15; RFC 5321 §6.1 (delivery responsibility)",
    roles=[Role.SMTP],
)
def test_clean_delivered(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    require_mailbox(target)
    account = target.account(0)
    msg = build("clean", sender=foreign_sender(target), recipient=account.address)
    with Inbound(target, endpoint, account) as probe:
        evidence.transcript("smtp", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        tx = probe.send(msg, sender=foreign_sender(target))
        expect(
            tx.accepted,
            f"clean message refused at {tx.refused_at}: {tx.last.code} {tx.last.text!r}",
        )
        found = probe.find(msg.token, ("INBOX", JUNK))
        expect(found is not None, "accepted clean message never reached INBOX or Junk")
        assert found is not None
        evidence.text("delivered headers", found.header_block())
        expect(found.folder == "INBOX", f"clean message delivered to {found.folder}")
        tag = spam_tag(found)
        expect(tag is None, f"clean message flagged as spam: {tag}")


@control(
    "FILTER-EICAR",
    "An EICAR attachment is rejected where the target declares anti-virus",
    severity="high",
    reference="seed S15 (filtering layers); EICAR test file",
    roles=[Role.SMTP],
)
def test_eicar(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    if not target.expect.antivirus:
        not_applicable("the target does not declare anti-virus (expect.antivirus = false)")
    account = target.account(0)
    msg = build("eicar", sender=foreign_sender(target), recipient=account.address)
    with Inbound(target, endpoint, account) as probe:
        evidence.transcript("smtp", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        tx = probe.send(msg, sender=foreign_sender(target))
        if tx.accepted:
            found = probe.find(msg.token)
            where = f"delivered to {found.folder}" if found else "not found in any folder"
            expect(False, f"EICAR accepted ({tx.last.code}), {where}")
        expect(
            tx.refused_at == "end of data" and is_permanent(tx.last.code),
            f"EICAR refused at {tx.refused_at} with {tx.last.code}, expected 5xx at end of DATA",
        )
