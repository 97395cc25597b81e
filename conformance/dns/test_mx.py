"""S11: the domain's MX records — present, with the policy's priorities, usable host names.

Priorities come from the target file (``expect.mx_priorities``, default the seed's 10/20).
An exchange that is an address literal or an alias is judged by DNS-MX-TARGET alone;
DNS-MX-RESOLVES judges only the host names an MTA may use.
"""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.lookups import is_address_literal
from maildrill.target import Target


def _mx(target: Target, evidence: Evidence) -> tuple[Lookups, list[tuple[int, str]]]:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    return dns, dns.mx(target.domain)


def _usable(target: Target, evidence: Evidence) -> tuple[Lookups, list[tuple[int, str]]]:
    dns, mx = _mx(target, evidence)
    if not mx or _null_mx(mx):
        not_applicable(f"{target.domain} has no MX to judge (DNS-MX-PRESENT reports it)")
    return dns, mx


def _null_mx(mx: list[tuple[int, str]]) -> bool:
    # RFC 7505 §3: a single MX "0 ." says the domain accepts no mail
    return len(mx) == 1 and mx[0][1] in ("", ".")


@control(
    "DNS-MX-PRESENT",
    "The mail domain publishes MX records",
    severity="critical",
    reference="RFC 5321 §5.1; RFC 7505; seed S11",
)
def test_mx_present(target: Target, evidence: Evidence) -> None:
    _dns, mx = _mx(target, evidence)
    expect(mx, f"{target.domain} has no MX record")
    expect(not _null_mx(mx), f"{target.domain} publishes a null MX (RFC 7505): accepts no mail")


@control(
    "DNS-MX-PRIORITY",
    "MX preferences are the policy's primary/backup priorities",
    severity="medium",
    reference="seed S11 (primary 10, backup 20); target expect.mx_priorities",
)
def test_mx_priorities(target: Target, evidence: Evidence) -> None:
    _dns, mx = _usable(target, evidence)
    wanted = sorted(target.expect.mx_priorities)
    found = sorted(pref for pref, _host in mx)
    evidence.text("expected", f"preferences {wanted} (expect.mx_priorities)")
    expect(
        found == wanted,
        f"MX preferences are {found}, the policy expects {wanted}: "
        + ", ".join(f"{p} {h}" for p, h in mx),
    )


@control(
    "DNS-MX-RESOLVES",
    "Every MX host name resolves to an address",
    severity="high",
    reference="RFC 5321 §5.1",
)
def test_mx_resolves(target: Target, evidence: Evidence) -> None:
    dns, mx = _usable(target, evidence)
    rows = [["preference", "exchange", "addresses"]]
    evidence.table("exchanges", rows)
    dead = []
    for pref, host in mx:
        if is_address_literal(host):
            rows.append([str(pref), host, "address literal (judged by DNS-MX-TARGET)"])
            continue
        found = dns.addresses(host)
        rows.append([str(pref), host, ", ".join(found) or "none"])
        if not found:
            dead.append(host)
    expect(not dead, f"MX host(s) without an A/AAAA record: {', '.join(dead)}")


@control(
    "DNS-MX-TARGET",
    "No MX points at an alias (CNAME) or an address literal",
    severity="medium",
    reference="RFC 5321 §5.1; RFC 2181 §10.3",
)
def test_mx_targets(target: Target, evidence: Evidence) -> None:
    dns, mx = _usable(target, evidence)
    wrong = []
    for _pref, host in mx:
        if is_address_literal(host):
            wrong.append(f"{host} is an address, not a host name (RFC 5321 §5.1)")
            continue
        alias = dns.cname(host)
        if alias is not None:
            wrong.append(f"{host} is an alias (CNAME → {alias}; RFC 2181 §10.3)")
    expect(not wrong, "; ".join(wrong))
