"""SMTP TLS reporting (RFC 8460): the ``_smtp._tls`` record.

Not part of the seed policy. As for MTA-STS: absent is not-applicable under ``seed`` (with
that reason) and a failure under ``ncsc``; a published record must be valid under any
policy (version, a ``mailto:`` or ``https:`` rua).
"""

from __future__ import annotations

import checkdmarc.smtp_tls_reporting as tlsrpt

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.target import Target

REQUIRED_BY = frozenset({"ncsc"})


@control(
    "TLSRPT",
    "An SMTP TLS reporting record is published and valid",
    severity="low",
    reference="RFC 8460 §3; NCSC email security guidance",
)
def test_tls_reporting(target: Target, evidence: Evidence) -> None:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    name = f"_smtp._tls.{target.domain}"
    records = [t for t in dns.txt(name) if t.replace(" ", "").startswith("v=TLSRPTv1")]
    if not records:
        if target.policy not in REQUIRED_BY:
            not_applicable(f"not required by the {target.policy} policy; {name} not published")
        expect(False, f"{name} publishes no TLS-RPT record (required by {target.policy})")
    expect(len(records) == 1, f"{name} has {len(records)} TLS-RPT records (RFC 8460 §3)")
    try:
        parsed = tlsrpt.parse_smtp_tls_reporting_record(records[0])
    except tlsrpt.SMTPTLSReportingError as exc:
        expect(False, f"TLS-RPT record is invalid: {exc}")
        return
    evidence.json("parsed", parsed)
