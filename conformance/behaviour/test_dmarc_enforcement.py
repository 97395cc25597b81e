"""S13: mail that fails DMARC for the target's domain is quarantined (Junk), not delivered."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.probes.auth import auth_results, dmarc_policy
from maildrill.probes.inbound import Inbound, require_mailbox
from maildrill.probes.mailbox import JUNK
from maildrill.probes.messages import build
from maildrill.smtp_protocol import is_permanent
from maildrill.target import Endpoint, Role, Target

# RFC 5321 §4.5.5: every MX accepts the null reverse-path; its SPF identity is then the
# HELO name (maildrill.invalid), which never aligns with the spoofed From domain
NULL_SENDER = ""


@control(
    "AUTH-DMARC-QUARANTINE",
    "Mail failing DMARC for the domain is quarantined (Junk) or rejected, not delivered",
    severity="high",
    reference="seed S13 (p=quarantine; pct=100); RFC 7489 §6.3, §6.6.2",
    roles=[Role.SMTP],
)
def test_dmarc_failure_quarantined(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    policy, record = dmarc_policy(target, target.domain)
    evidence.dns("DMARC record", [f"_dmarc.{target.domain} TXT {record!r}"])
    if record is None:
        not_applicable(f"{target.domain} publishes no DMARC record (DMARC-PRESENT reports that)")
    require_mailbox(target)
    account = target.account(0)
    # the From header claims the target's own domain; no DKIM, unaligned envelope
    msg = build(
        "plain",
        sender=f"dmarc-probe@{target.expect.relay_test_domain}",
        header_from=f"ceo@{target.domain}",
        recipient=account.address,
    )
    with Inbound(target, endpoint, account) as probe:
        evidence.transcript("smtp", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        tx = probe.send(msg, sender=NULL_SENDER)
        if not tx.accepted:
            expect(
                tx.refused_at == "end of data" and is_permanent(tx.last.code),
                f"the probe was refused at {tx.refused_at} ({tx.last.code} {tx.last.text!r}) "
                "before DMARC could be evaluated",
            )
            return  # rejected at end of DATA: stricter than quarantine (p=reject behaviour)
        found = probe.find(msg.token, ("INBOX", JUNK))
        if found is None:
            # quarantined outside the mailbox (Postfix's hold queue, a quarantine store):
            # what matters is that it never reached the INBOX within the delivery SLO
            evidence.text("outcome", "accepted, then not delivered to INBOX or Junk: held")
            return
        evidence.text("delivered headers", found.header_block())
        dmarc = auth_results(found.header("Authentication-Results"), "dmarc")
        expect(
            found.folder != "INBOX",
            f"DMARC-failing mail delivered to INBOX (domain policy p={policy}, "
            f"Authentication-Results dmarc={dmarc or 'absent'})",
        )
