"""CAA (RFC 8659): which CAs may issue certificates for the mail domain and the endpoints'
host names.

Not in the seed policy. For the mail domain and each endpoint host name the relevant CAA
set is found as a CA finds it, climbing from the name toward the root (RFC 8659 §3). A name
without one may be certified by any CA: a warning, not a failure. A relevant set fails the
control when it forbids the CA that issues this system's certificates — and renewal with
it. That CA is named in the target file (``expect.caa_issuers``): a certificate does not
say which CAA name its CA answers to (the issuer's distinguished name is free text).
Without it only the presence of CAA is judged, and the warning says so; a set that forbids
every CA (``issue ";"``, an unknown property flagged critical) fails either way. The names
are host names, so ``issue`` decides; ``issuewild`` governs wildcard requests only (§4.3).
"""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.caa import relevant_sets
from maildrill.dnsrecords.lookups import is_address_literal
from maildrill.target import Target


@control(
    "DNS-CAA",
    "CAA records let the CA of the mail system's certificates issue for its names",
    severity="medium",
    reference="RFC 8659 §3, §4.1, §4.2",
)
def test_caa(target: Target, evidence: Evidence) -> None:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    hosts = [e.host for e in target.endpoints.values() if not is_address_literal(e.host)]
    names = list(dict.fromkeys([target.domain, *hosts]))
    issuers = target.expect.caa_issuers
    rows = [["name", "relevant CAA set at", "records", "finding"]]
    evidence.table("CAA", rows)
    refused: dict[str, list[str]] = {}  # why → the names it forbids
    unrestricted: list[str] = []
    unjudged: list[str] = []
    for name, found in relevant_sets(dns, names).items():
        if found is None:
            unrestricted.append(name)
            rows.append([name, "none", "", "any CA may issue"])
            continue
        why = list(dict.fromkeys(r for r in map(found.refusal, issuers or [None]) if r))
        allowed = found.issuers
        if why:
            finding = "; ".join(why)
            for reason in why:
                refused.setdefault(reason, []).append(name)
        elif allowed is None:
            unrestricted.append(name)
            finding = "no issue property: any CA may issue"
        elif not issuers:
            unjudged.append(name)
            finding = f"lets {', '.join(sorted(allowed))} issue; the issuing CA is not named"
        else:
            finding = f"lets {', '.join(issuers)} issue"
        rows.append([name, found.owner, "; ".join(map(str, found.properties)), finding])
    if unrestricted:
        evidence.warn(
            f"no CAA record restricts issuance for {', '.join(unrestricted)}: any CA may "
            "issue certificates for them (RFC 8659 §3)"
            + ("" if issuers or unjudged else "; expect.caa_issuers names no CA")
        )
    if unjudged:
        evidence.warn(
            "expect.caa_issuers names no CA, so only the presence of CAA was judged: whether "
            f"it lets the CA of the served certificates issue for {', '.join(unjudged)} is "
            "not known"
        )
    expect(
        not refused,
        "; ".join(f"{', '.join(names)}: {reason}" for reason, names in refused.items())
        + ("; the CA is named in expect.caa_issuers" if issuers else ""),
    )
