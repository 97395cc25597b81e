"""S13: the domain's DMARC record — present, enforcing, pct=100, reports authorised.

``pct``: RFC 9989 (DMARCbis) removed the tag and checkdmarc warns about it; the seed still
requires ``pct=100``. DMARC-PCT verifies the seed's rule and its evidence states both facts.
An absent ``pct`` means 100 under RFC 7489 §6.3 and passes, with that noted.
"""

from __future__ import annotations

import checkdmarc.dmarc

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.dmarc import (
    DMARCBIS_PCT,
    dmarc_records,
    explicit_tags,
    rua_problems,
)
from maildrill.mailauth import parse_dmarc
from maildrill.target import Target

ENFORCING = ("quarantine", "reject")  # seed S13 asks for quarantine; reject is stricter


def _records(target: Target, evidence: Evidence) -> tuple[Lookups, list[str]]:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    records = dmarc_records(dns, target.domain)
    if not records:
        not_applicable(f"_dmarc.{target.domain} has no DMARC record (DMARC-PRESENT reports it)")
    return dns, records


@control(
    "DMARC-PRESENT",
    "Exactly one valid DMARC record is published",
    severity="high",
    reference="RFC 7489 §6.6.3, §6.4; seed S13",
)
def test_dmarc_present(target: Target, evidence: Evidence) -> None:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    records = dmarc_records(dns, target.domain)
    expect(records, f"_dmarc.{target.domain} publishes no DMARC record (v=DMARC1)")
    expect(
        len(records) == 1,
        f"_dmarc.{target.domain} publishes {len(records)} DMARC records; receivers then "
        f"apply none (RFC 7489 §6.6.3): " + " | ".join(records),
    )
    try:
        _tags, warnings = parse_dmarc(records[0], target.domain, lookups=dns)
    except checkdmarc.dmarc.InvalidDMARCReportURI as exc:
        evidence.text("rua", f"{exc} (judged by DMARC-RUA)")
    except checkdmarc.dmarc.DMARCError as exc:
        expect(False, f"DMARC record is invalid: {exc}")
    else:
        evidence.text("checkdmarc warnings", "\n".join(warnings) or "none")


@control(
    "DMARC-POLICY",
    "DMARC policy is quarantine or reject",
    severity="high",
    reference="RFC 7489 §6.3; seed S13 (p=quarantine)",
)
def test_dmarc_policy(target: Target, evidence: Evidence) -> None:
    for record in _records(target, evidence)[1]:
        policy = explicit_tags(record).get("p", "").lower()
        expect(
            policy in ENFORCING,
            f"DMARC p={policy or '(missing)'}: failing mail is not quarantined or rejected",
        )


@control(
    "DMARC-PCT",
    "DMARC applies to 100% of failing mail (pct=100)",
    severity="medium",
    reference="seed S13; RFC 7489 §6.3 (pct; removed by RFC 9989 DMARCbis)",
)
def test_dmarc_pct(target: Target, evidence: Evidence) -> None:
    evidence.text("DMARCbis", DMARCBIS_PCT)
    for record in _records(target, evidence)[1]:
        pct = explicit_tags(record).get("pct")
        if pct is None:
            evidence.text("pct", "absent: 100 by RFC 7489 §6.3's default")
            continue
        expect(
            pct == "100",
            f"DMARC pct={pct}: the policy applies to only part of failing mail "
            f"(seed S13 requires pct=100; note RFC 9989 removed pct)",
        )


@control(
    "DMARC-RUA",
    "DMARC aggregate reports go to a valid, authorised mailto",
    severity="medium",
    reference="RFC 7489 §6.4, §7.1; seed S13 (rua=mailto:postmaster@domain)",
)
def test_dmarc_rua(target: Target, evidence: Evidence) -> None:
    dns, records = _records(target, evidence)
    for record in records:
        problems = rua_problems(dns, record, target.domain)
        expect(not problems, "; ".join(problems))
