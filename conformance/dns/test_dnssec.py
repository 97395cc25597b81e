"""DNSSEC: is the zone signed, and do its signatures validate?

Reported at info severity. Not part of the seed policy: an unsigned zone is not-applicable
under ``seed`` ("not required; unsigned") and fails under ``ncsc``. A zone that publishes a
DNSKEY must sign it and its SOA with signatures that validate now, whatever the policy. The
chain of trust above the zone (DS at the parent) is not judged here; the resolver's AD bit
is reported as evidence.
"""

from __future__ import annotations

import time

import dns.flags
import dns.name
import dns.rdatatype
import dns.rrset

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.dnssec import verify
from maildrill.target import Target

REQUIRED_BY = frozenset({"ncsc"})


def _rrsets(lookups: Lookups, name: str, rdtype: str) -> tuple[dns.rrset.RRset | None, ...]:
    response = lookups.message(name, rdtype)
    kind = dns.rdatatype.from_text(rdtype)
    qname = dns.name.from_text(name)
    rrset = sig = None
    for rr in response.answer:
        if rr.name == qname and rr.rdtype == kind:
            rrset = rr
        elif rr.name == qname and rr.rdtype == dns.rdatatype.RRSIG and rr.covers == kind:
            sig = rr
    return rrset, sig, bool(response.flags & dns.flags.AD)


@control(
    "DNSSEC",
    "The zone is signed and its signatures validate",
    severity="info",
    reference="RFC 4033 §3, RFC 4035 §5.3; RFC 7672 §2.1 (DANE needs DNSSEC)",
)
def test_dnssec(target: Target, evidence: Evidence) -> None:
    lookups = Lookups(target)
    evidence.dns("queries", lookups.lines)
    keys, keys_sig, ad = _rrsets(lookups, target.domain, "DNSKEY")
    if keys is None:
        if target.policy not in REQUIRED_BY:
            not_applicable(f"not required by the {target.policy} policy; zone is unsigned")
        expect(False, f"{target.domain} is not signed (no DNSKEY; required by {target.policy})")
    assert isinstance(keys, dns.rrset.RRset)
    evidence.text("resolver AD bit", "set (validated)" if ad else "not set")
    soa, soa_sig, _ad = _rrsets(lookups, target.domain, "SOA")
    problems = []
    for what, rrset, sig in (("DNSKEY", keys, keys_sig), ("SOA", soa, soa_sig)):
        if rrset is None or sig is None:
            problems.append(f"{what}: no RRSIG in the answer (RFC 4035 §3.1.1)")
            continue
        assert isinstance(rrset, dns.rrset.RRset) and isinstance(sig, dns.rrset.RRset)
        problem = verify(rrset, sig, keys, now=time.time())
        if problem:
            problems.append(f"{what}: {problem}")
    expect(not problems, "; ".join(problems))
