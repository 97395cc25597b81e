"""S15: every DKIM selector of the target resolves to a usable key, RSA ≥ 2048 bits, not
in test mode. The selectors come from the target file (``dns.dkim_selectors``): DNS cannot
list them. An Ed25519 key (RFC 8463) passes the size control: it is not an RSA key."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.dkim import DKIMKey, dkim_keys
from maildrill.target import Target

MIN_RSA_BITS = 2048  # seed S15; RFC 8301 §3.2 only requires 1024


def _keys(target: Target, evidence: Evidence) -> list[DKIMKey]:
    if not target.dns.dkim_selectors:
        not_applicable("the target file lists no dns.dkim_selectors")
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    keys = [k for s in target.dns.dkim_selectors for k in dkim_keys(dns, s, target.domain)]
    rows = [["record", "k", "bits", "t", "problem"]]
    rows += [
        [k.name, k.key_type, str(k.bits or "-"), k.tags.get("t", ""), k.problem or ""] for k in keys
    ]
    evidence.table("keys", rows)
    return keys


def _usable(target: Target, evidence: Evidence) -> list[DKIMKey]:
    keys = [k for k in _keys(target, evidence) if k.problem is None]
    if not keys:
        not_applicable("no usable DKIM key was found (DKIM-SELECTOR reports it)")
    return keys


@control(
    "DKIM-SELECTOR",
    "Every listed DKIM selector publishes one usable key",
    severity="high",
    reference="RFC 6376 §3.6.1, §3.6.2.2; seed S15",
)
def test_dkim_selectors(target: Target, evidence: Evidence) -> None:
    keys = _keys(target, evidence)
    wrong = []
    for selector in target.dns.dkim_selectors:
        name = f"{selector}._domainkey.{target.domain}"
        found = [k for k in keys if k.name == name]
        if not found:
            wrong.append(f"{name}: no key record")
        elif len(found) > 1:
            wrong.append(f"{name}: {len(found)} TXT records, verifiers need exactly one")
        wrong += [f"{name}: {k.problem}" for k in found if k.problem]
    expect(not wrong, "; ".join(wrong))


@control(
    "DKIM-KEY-SIZE",
    "DKIM RSA keys have at least 2048 bits",
    severity="high",
    reference="seed S15; RFC 8301 §3.2",
)
def test_dkim_key_size(target: Target, evidence: Evidence) -> None:
    weak = [
        f"{k.name}: {k.bits} bits"
        for k in _usable(target, evidence)
        if k.bits is not None and k.bits < MIN_RSA_BITS
    ]
    expect(not weak, f"RSA keys below {MIN_RSA_BITS} bits: {', '.join(weak)}")


@control(
    "DKIM-TESTMODE",
    "No DKIM key is in test mode (t=y)",
    severity="medium",
    reference="RFC 6376 §3.6.1 (t=y: verifiers may treat signed mail as unsigned)",
)
def test_dkim_not_testing(target: Target, evidence: Evidence) -> None:
    testing = [k.name for k in _usable(target, evidence) if k.testing]
    expect(not testing, f"DKIM key(s) in test mode (t=y): {', '.join(testing)}")
