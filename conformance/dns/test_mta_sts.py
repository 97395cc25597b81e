"""MTA-STS (RFC 8461): the ``_mta-sts`` record and the policy it announces.

Not part of the seed policy (S11 to S15 name no MTA-STS). Decision: under ``policy = "seed"``
a domain that publishes no record is not-applicable ("not required by the seed policy; not
published"); under ``ncsc`` (whose email guidance asks for MTA-STS) absence fails. Whatever
the policy, a record that *is* published must be valid and its policy fetchable over HTTPS,
in ``enforce`` mode, and cover every MX: a broken MTA-STS is worse than none.
"""

from __future__ import annotations

from http import HTTPStatus

import checkdmarc.mta_sts

from maildrill.controls.api import Evidence, control, expect, not_applicable, subject
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.mtasts import POLICY_PATH, fetch_policy
from maildrill.target import Target

REQUIRED_BY = frozenset({"ncsc"})


@control(
    "MTA-STS",
    "MTA-STS record and policy are valid, enforcing and cover every MX",
    severity="low",
    reference="RFC 8461 §3.1, §3.2, §3.3, §4.1; NCSC email security guidance",
)
def test_mta_sts(target: Target, evidence: Evidence) -> None:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    name = f"_mta-sts.{target.domain}"
    records = [t for t in dns.txt(name) if t.replace(" ", "").startswith("v=STSv1")]
    if not records:
        if target.policy not in REQUIRED_BY:
            not_applicable(f"not required by the {target.policy} policy; {name} not published")
        expect(False, f"{name} publishes no MTA-STS record (required by {target.policy})")
    expect(len(records) == 1, f"{name} has {len(records)} MTA-STS records (RFC 8461 §3.1)")
    try:
        checkdmarc.mta_sts.parse_mta_sts_record(records[0])
    except checkdmarc.mta_sts.MTASTSError as exc:
        expect(False, f"MTA-STS record is invalid: {exc}")
    transcript = [f"GET https://mta-sts.{target.domain}{POLICY_PATH}"]
    evidence.transcript("policy fetch", transcript)
    with subject("the MTA-STS policy"):  # a published record must be fetchable: the finding
        status, body = fetch_policy(target, dns, target.domain)
    transcript += [f"HTTP {status}", *body.splitlines()]
    expect(status == HTTPStatus.OK, f"the MTA-STS policy answered HTTP {status} (RFC 8461 §3.3)")
    try:
        parsed = checkdmarc.mta_sts.parse_mta_sts_policy(body)["policy"]
    except checkdmarc.mta_sts.MTASTSError as exc:
        expect(False, f"MTA-STS policy is invalid: {exc}")
        return
    expect(parsed["mode"] == "enforce", f"MTA-STS mode is {parsed['mode']}, not enforce")
    uncovered = [
        host
        for _pref, host in dns.mx(target.domain)
        if not checkdmarc.mta_sts.mx_in_mta_sts_patterns(host, parsed["mx"])
    ]
    expect(not uncovered, f"MX not covered by the MTA-STS policy: {', '.join(uncovered)}")
