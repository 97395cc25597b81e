"""S14: each TLS endpoint accepts only the protocol versions its policy profile allows."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.target import Endpoint, Target
from maildrill.tls.policy import VERSIONS, profile_for
from maildrill.tls.scan import TLS_ROLES, EndpointScan, accepted_versions


@control(
    "TLS-VERSIONS",
    "Only the policy's TLS versions are accepted",
    severity="high",
    reference="RFC 8996 §2-§5; RFC 9325 §3.1.1; seed S14 (!SSLv2,!SSLv3,!TLSv1); "
    "Mozilla intermediate/modern; NCSC-NL TLS guidelines v2.1 table 2",
    roles=TLS_ROLES,
)
def test_protocol_versions(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    profile = profile_for(target.policy)
    rows = [["node", "version", "accepted", f"allowed by {profile.name}"]]
    evidence.table("protocol versions", rows)
    forbidden: list[str] = []
    usable: dict[str, list[str]] = {}
    for node, version, accepted in accepted_versions(tls_endpoint):
        allowed = profile.version_allowed(version)
        rows.append([node.label, version, "yes" if accepted else "no", "yes" if allowed else "no"])
        usable.setdefault(node.label, [])
        if accepted and not allowed:
            forbidden.append(f"{version} on {node.label}")
        elif accepted:
            usable[node.label].append(version)
    if any("TLSv1.1" in versions for versions in usable.values()):
        evidence.text("note", "TLS 1.1 is accepted: seed S14 allows it, RFC 8996 §3 does not")
    allowed_list = [v for v in VERSIONS if profile.version_allowed(v)]
    expect(
        not forbidden,
        f"policy {profile.name} allows only {', '.join(allowed_list)}; "
        f"accepted: {', '.join(forbidden)}",
    )
    dead = [label for label, versions in usable.items() if not versions]
    expect(not dead, f"no version the policy allows is accepted on {', '.join(dead)}")
