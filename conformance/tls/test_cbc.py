"""CBC-mode suites under TLS 1.0-1.2 (testssl.sh's ``LUCKY13`` and, on TLS 1.0, ``BEAST``).

CBC in TLS is MAC-then-encrypt: its padding check is a timing oracle (Lucky Thirteen) unless
the implementation is constant-time, and TLS 1.0's predictable IV adds BEAST. A profile
whose own suite list has no CBC suite (Mozilla intermediate and modern) fails it; one that
still lists AES-CBC as acceptable (seed S14's ``high``, NCSC-NL's "sufficient") warns."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.target import Endpoint, Target
from maildrill.tls.policy import is_cbc, profile_for
from maildrill.tls.scan import TLS_ROLES, EndpointScan, accepted_suites, suites_table


@control(
    "TLS-CBC",
    "No CBC-mode cipher suites (TLS 1.0-1.2)",
    severity="low",
    reference="RFC 9325 §4.2 (AEAD suites only); CVE-2013-0169 (Lucky Thirteen); "
    "CVE-2011-3389 (BEAST); Mozilla 5.7 intermediate/modern; NCSC-NL v2.1 table 4 "
    "(AES-CBC: sufficient)",
    roles=TLS_ROLES,
)
def test_cbc_suites(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    profile = profile_for(target.policy)
    suites = accepted_suites(tls_endpoint)
    if suites and all(s.version == "TLSv1.3" for s in suites):
        not_applicable("only TLS 1.3 is accepted: it has no CBC suites (RFC 8446 §5.2)")
    cbc = [s for s in suites if is_cbc(s.name)]
    evidence.table("accepted CBC suites", suites_table(cbc))
    found = sorted({f"{s.name} ({s.version})" for s in cbc})
    beast = sorted({s.node for s in cbc if s.version in ("SSLv3", "TLSv1")})
    finding = f"{len(found)} CBC suite(s) accepted: {'; '.join(found)}" + (
        f" — under SSLv3/TLS 1.0 (BEAST) on {', '.join(beast)}" if beast else ""
    )
    if found and profile.cbc_allowed:
        evidence.warn(
            f"{finding}. Policy {profile.name} still allows AES-CBC; prefer AEAD suites "
            "(AES-GCM, ChaCha20-Poly1305)"
        )
        return
    expect(not found, f"policy {profile.name} allows no CBC suite; {finding}")
