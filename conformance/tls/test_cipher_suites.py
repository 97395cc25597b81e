"""S14: no weak suite on any version; the policy's suites only; forward secrecy."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.target import Endpoint, Target
from maildrill.tls.policy import forward_secret, profile_for, weaknesses
from maildrill.tls.scan import TLS_ROLES, EndpointScan, accepted_suites, suites_table


@control(
    "TLS-CIPHERS-WEAK",
    "No NULL, anonymous, EXPORT, RC4, MD5, DES or 3DES cipher suites",
    severity="high",
    reference="RFC 9325 §4.1; RFC 7465 (RC4); RFC 6176 (SSLv2); seed S14 (!aNULL:!MD5:!RC4)",
    roles=TLS_ROLES,
)
def test_no_weak_suites(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    suites = accepted_suites(tls_endpoint)
    evidence.table("accepted suites", suites_table(suites))
    weak = [
        f"{s.name} ({s.version}, {', '.join(found)})"
        for s in suites
        if (found := weaknesses(s.name, anonymous=s.anonymous))
    ]
    expect(suites, "no cipher suite accepted on any version")
    expect(not weak, f"{len(weak)} weak suite(s) accepted: {'; '.join(sorted(set(weak)))}")


@control(
    "TLS-CIPHERS-POLICY",
    "Only the policy profile's cipher suites are accepted",
    severity="medium",
    reference="seed S14 (smtpd_tls_ciphers high:!aNULL:!MD5:!RC4); Mozilla intermediate/modern "
    "cipher lists; NCSC-NL TLS guidelines v2.1 table 4",
    roles=TLS_ROLES,
)
def test_policy_suites(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    profile = profile_for(target.policy)
    suites = accepted_suites(tls_endpoint)
    evidence.table("accepted suites", suites_table(suites))
    evidence.text("policy", f"{profile.name}: {profile.ciphers} ({profile.reference})")
    outside = sorted(
        {
            f"{s.name} ({s.version})"
            for s in suites
            if not profile.suite_allowed(s.name, s.openssl_name)
        }
    )
    expect(
        not outside,
        f"{len(outside)} suite(s) outside policy {profile.name}: {'; '.join(outside)}",
    )


@control(
    "TLS-FS",
    "Every accepted suite has forward secrecy (ephemeral key exchange)",
    severity="medium",
    reference="RFC 9325 §4.1-§4.2 (ECDHE/DHE suites only); Mozilla intermediate; "
    "NCSC-NL TLS guidelines v2.1 (RSA key exchange: phase out)",
    roles=TLS_ROLES,
)
def test_forward_secrecy(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    suites = accepted_suites(tls_endpoint)
    evidence.table("accepted suites", suites_table(suites))
    static = sorted(
        {f"{s.name} ({s.version})" for s in suites if not forward_secret(s.name, s.version)}
    )
    expect(suites, "no cipher suite accepted on any version")
    expect(
        not static,
        f"{len(static)} suite(s) without forward secrecy (static RSA key exchange): "
        f"{'; '.join(static)}",
    )
