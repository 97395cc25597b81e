"""S12: mail from a client the domain's SPF does not authorise is rejected under -all."""

from __future__ import annotations

import ipaddress

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.probes.auth import dnsbl_listed, spf_record, spf_result
from maildrill.probes.inbound import Inbound
from maildrill.probes.messages import build
from maildrill.probes.smtp import is_loopback_endpoint
from maildrill.smtp_protocol import is_permanent
from maildrill.target import Endpoint, Role, Target

UNAUTHORISED = ("fail", "softfail")
CANDIDATES = [f"127.0.0.{n}" for n in range(5, 12)]  # never 127.0.0.1, never 127.0.0.2


def _source(target: Target, sender: str, zones: list[str]) -> tuple[str, str] | None:
    """A loopback address the SPF record does not authorise (and no DNSBL lists)."""
    avoid = {target.expect.lockout_source}
    for ip in CANDIDATES:
        if ip in avoid or any(dnsbl_listed(target, ip, z) for z in zones):
            continue
        result = spf_result(target, ip, sender)
        if result in UNAUTHORISED:
            return ip, result
    return None


@control(
    "AUTH-SPF-REJECT",
    "Mail from a client the sender domain's SPF does not authorise is rejected",
    severity="high",
    reference="seed S12 (v=spf1 … -all); RFC 7208 §8.4 (fail), §2.6.7; RFC 7372 §3.2",
    roles=[Role.SMTP],
)
def test_spf_fail_rejected(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    sender = f"spf-probe@{target.domain}"
    record = spf_record(target, target.domain)
    evidence.dns("SPF record", [f"{target.domain} TXT {record!r}"])
    if record is None:
        not_applicable(f"{target.domain} publishes no SPF record (SPF-SINGLE reports that)")
    if not is_loopback_endpoint(target, endpoint):
        not_applicable(
            f"{endpoint} is not on loopback: the check cannot choose a client address "
            "outside the domain's SPF"
        )
    chosen = _source(target, sender, target.dns.dnsbl_zones)
    if chosen is None:
        not_applicable(f"every candidate address {CANDIDATES[0]}… is authorised by {record!r}")
    source, result = chosen
    evidence.text("SPF evaluation", f"{sender} from {source}: {result} (RFC 7208, via pyspf)")
    assert ipaddress.ip_address(source).is_loopback
    account = target.account(0)
    msg = build("plain", sender=sender, recipient=account.address)
    with Inbound(target, endpoint, account, source=source) as probe:
        evidence.transcript("smtp", probe.smtp_transcript)
        evidence.transcript("mailbox", probe.imap_transcript)
        tx = probe.send(msg, sender=sender)
        if tx.accepted:
            found = probe.find(msg.token)
            where = f"delivered to {found.folder}" if found else "not found in a folder"
            expect(
                False,
                f"SPF {result} for {sender} from {source}, yet accepted "
                f"({tx.last.code} {tx.last.text!r}); {where}",
            )
        expect(
            is_permanent(tx.last.code),
            f"refused with {tx.last.code} (temporary), expected a 5xx rejection",
        )
