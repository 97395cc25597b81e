"""S10: each TLS endpoint's certificate chains to the target's CA, is in date, has a strong
key and signature, and names the endpoint's host in its subjectAltName."""

from __future__ import annotations

from typing import Any

from maildrill.controls.api import Evidence, control, expect
from maildrill.target import Endpoint, Target
from maildrill.tls.certificates import (
    CHAIN_HEADER,
    WEAK_SIGNATURE_HASHES,
    chain_table,
    days_left,
    host_matches,
    is_self_signed,
    public_key_info,
    san_names,
    signature_hash,
    subject,
)
from maildrill.tls.scan import TLS_ROLES, EndpointScan, NodeScan, certificate_deployments

EXPIRY_FAIL_DAYS = 14
EXPIRY_WARN_DAYS = 30
CUSTOM_STORE = "Supplied CA file"  # sslyze's name for CertificateInfoExtraArgument's CA file


def _deployments(scan: EndpointScan, evidence: Evidence) -> list[tuple[NodeScan, Any]]:
    found = certificate_deployments(scan)
    rows = [CHAIN_HEADER]
    for node, deployment in found:
        rows += chain_table(node.label, deployment.received_certificate_chain)
    evidence.table("certificate chain as received", rows)
    expect(found, "the server sent no certificate")
    return found


@control(
    "CERT-CHAIN",
    "Certificate chains to the target's CA",
    severity="high",
    reference="RFC 5280 §6; RFC 9325 §7.1 (RFC 6125 validation); seed S10",
    roles=TLS_ROLES,
)
def test_chain(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    rows = [["node", "trust store", "verified", "error"]]
    failures = []
    for node, deployment in _deployments(tls_endpoint, evidence):
        results = deployment.path_validation_results
        if target.ca_path is not None:  # the target's own CA is the anchor (lab or private PKI)
            results = [r for r in results if r.trust_store.name == CUSTOM_STORE]
        ok = any(r.was_validation_successful for r in results)
        for r in results:
            rows.append([node.label, r.trust_store.name, str(r.was_validation_successful),
                         r.validation_error or ""])  # fmt: skip
        if not ok:
            errors = {r.validation_error or "not verified" for r in results}
            failures.append(f"{node.label}: {'; '.join(sorted(errors))}")
    evidence.table("path validation", rows)
    anchor = f"the CA file {target.ca_path}" if target.ca_path else "any public trust store"
    expect(not failures, f"chain does not verify against {anchor}: {' | '.join(failures)}")


@control(
    "CERT-EXPIRY",
    f"Certificates valid for {EXPIRY_FAIL_DAYS}+ days (warning under {EXPIRY_WARN_DAYS})",
    severity="high",
    reference="RFC 5280 §4.1.2.5; seed S10",
    roles=TLS_ROLES,
)
def test_expiry(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    short, warn = [], []
    for node, deployment in _deployments(tls_endpoint, evidence):
        for cert in deployment.received_certificate_chain:
            left = days_left(cert)
            where = f"{subject(cert)} on {node.label}: {left:.1f} days left"
            if left < EXPIRY_FAIL_DAYS:
                short.append(where)
            elif left < EXPIRY_WARN_DAYS:
                warn.append(where)
    if warn:
        evidence.warn(f"expires within {EXPIRY_WARN_DAYS} days: {'; '.join(warn)}")
    expect(
        not short,
        f"expired or expires within {EXPIRY_FAIL_DAYS} days: {'; '.join(short)}",
    )


@control(
    "CERT-KEY",
    "Keys are RSA ≥ 2048 bits or EC ≥ 256 bits",
    severity="high",
    reference="RFC 9325 §4.3; NCSC-NL TLS guidelines v2.1 table 7; seed S10",
    roles=TLS_ROLES,
)
def test_key_size(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    weak = [
        f"{subject(cert)} on {node.label}: {public_key_info(cert)}"
        for node, deployment in _deployments(tls_endpoint, evidence)
        for cert in deployment.received_certificate_chain
        if not public_key_info(cert).ok
    ]
    expect(not weak, f"weak key: {'; '.join(weak)}")


@control(
    "CERT-SAN",
    "Certificate's subjectAltName covers the endpoint's host name",
    severity="high",
    reference="RFC 6125 §6.4 (SAN, no CN fallback); RFC 9325 §7.1; seed S10",
    roles=TLS_ROLES,
)
def test_san(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    missing = []
    for node, deployment in _deployments(tls_endpoint, evidence):
        names = san_names(deployment.received_certificate_chain[0])
        if not host_matches(endpoint.host, names):
            missing.append(f"{node.label} (SAN: {', '.join(names) or 'none'})")
    expect(not missing, f"{endpoint.host} is not in the certificate's SAN on {'; '.join(missing)}")


@control(
    "CERT-SIGALG",
    "Certificates are not signed with MD5 or SHA-1",
    severity="medium",
    reference="RFC 9155 §3 (no MD5/SHA-1 signatures); CA/B Forum BR §7.1.3; "
    "Mozilla intermediate (certificate_signatures)",
    roles=TLS_ROLES,
)
def test_signature_algorithm(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    weak = [
        f"{subject(cert)} on {node.label}: {signature_hash(cert)}"
        for node, deployment in _deployments(tls_endpoint, evidence)
        for cert in deployment.received_certificate_chain
        # a self-signed anchor's own signature is never checked (RFC 5280 §6.1)
        if not is_self_signed(cert) and signature_hash(cert) in WEAK_SIGNATURE_HASHES
    ]
    expect(not weak, f"weak signature: {'; '.join(weak)}")
