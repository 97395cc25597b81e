"""S12: the domain's SPF record — one record, ending ``-all``, within RFC 7208's limits.

The controls after SPF-SINGLE judge every published SPF record (with two records each is
judged; SPF-SINGLE reports the duplication), and are not applicable when there is none.
"""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.spf import MAX_LOOKUPS, MAX_VOID, SPFWalk, spf_records, walk_spf
from maildrill.target import Target


def _walks(target: Target, evidence: Evidence) -> list[SPFWalk]:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    records = spf_records(dns, target.domain)
    if not records:
        not_applicable(f"{target.domain} publishes no SPF record (SPF-SINGLE reports it)")
    walks = [walk_spf(dns, target.domain, record) for record in records]
    for walk in walks:
        evidence.text(f"walk of {walk.record!r}", "\n".join(walk.trace) or "no lookups")
        if walk.problems:
            evidence.text(f"problems in {walk.record!r}", "\n".join(walk.problems))
    return walks


@control(
    "SPF-SINGLE",
    "Exactly one SPF record is published",
    severity="high",
    reference="RFC 7208 §3.2, §4.5; seed S12",
)
def test_spf_single(target: Target, evidence: Evidence) -> None:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    records = spf_records(dns, target.domain)
    expect(records, f"{target.domain} publishes no SPF record (v=spf1)")
    expect(
        len(records) == 1,
        f"{target.domain} publishes {len(records)} SPF records (permerror, RFC 7208 §4.5): "
        + " | ".join(records),
    )


@control(
    "SPF-ALL",
    "SPF ends in -all (hard fail for everyone else)",
    severity="high",
    reference="RFC 7208 §5.1; seed S12",
)
def test_spf_all(target: Target, evidence: Evidence) -> None:
    for walk in _walks(target, evidence):
        shown = "no all mechanism" if walk.all_qualifier is None else f"{walk.all_qualifier}all"
        expect(walk.all_qualifier == "-", f"SPF ends in {shown}, the policy requires -all")


@control(
    "SPF-LOOKUPS",
    "SPF needs at most 10 DNS-querying terms",
    severity="high",
    reference="RFC 7208 §4.6.4; seed S12",
)
def test_spf_lookups(target: Target, evidence: Evidence) -> None:
    for walk in _walks(target, evidence):
        expect(
            walk.lookups <= MAX_LOOKUPS,
            f"SPF needs {walk.lookups} DNS-querying terms, at most {MAX_LOOKUPS} are allowed "
            f"(permerror): {walk.record!r}",
        )


@control(
    "SPF-VOID",
    "SPF causes at most 2 void lookups",
    severity="medium",
    reference="RFC 7208 §4.6.4",
)
def test_spf_void(target: Target, evidence: Evidence) -> None:
    for walk in _walks(target, evidence):
        expect(
            walk.void <= MAX_VOID,
            f"SPF causes {walk.void} void lookups (NXDOMAIN or no records), at most "
            f"{MAX_VOID} are allowed (permerror): {walk.record!r}",
        )


@control(
    "SPF-PTR",
    "SPF does not use the ptr mechanism",
    severity="low",
    reference="RFC 7208 §5.5 (SHOULD NOT be used)",
)
def test_spf_no_ptr(target: Target, evidence: Evidence) -> None:
    for walk in _walks(target, evidence):
        expect(not walk.ptr_terms, f"SPF uses ptr: {'; '.join(walk.ptr_terms)}")
