"""Ephemeral key exchange groups: finite-field DHE primes of 2048+ bits that are not a
widely shared IKE prime (testssl.sh's ``DH_groups``, ``LOGJAM``, ``LOGJAM-common_primes``),
and ECDHE on the curves clients expect."""

from __future__ import annotations

import re

from sslyze.plugins.scan_commands import ScanCommand

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.target import Endpoint, Target
from maildrill.tls.dhgroups import is_ffdhe, known_group
from maildrill.tls.scan import TLS_ROLES, EndpointScan, accepted_suites

MIN_DH_BITS = 2048  # RFC 9325 §4.1; NCSC-NL v2.1 table 8 (ffdhe2048: sufficient)
# 128-bit security: X25519 (255 bits) and up; RFC 8422 §5.1.1 deprecates every smaller curve
MIN_EC_BITS = 255
EXPECTED_CURVES = {"X25519", "prime256v1", "secp256r1"}  # sslyze names P-256 either way


def _curve_bits(name: str) -> int:
    if name == "X25519":
        return 255
    if name == "X448":
        return 448
    digits = re.search(r"(\d{3})", name)
    return int(digits.group(1)) if digits else 0


@control(
    "TLS-DH-PARAMS",
    f"DHE groups ≥ {MIN_DH_BITS} bits and not a shared IKE prime; ECDHE on X25519/P-256",
    severity="high",
    reference="RFC 9325 §4.1 (DHE ≥ 2048 bits); RFC 7919 (negotiated FFDHE groups); "
    "weakdh.org (Logjam, CVE-2015-4000); RFC 8422 §5.1.1 (curves); Mozilla 5.7 tls_curves",
    roles=TLS_ROLES,
)
def test_key_exchange_groups(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    weak: list[str] = []
    shared: list[str] = []
    rows = [["node", "version", "suite", "DH group bits", "known as"]]
    dhe = [s for s in accepted_suites(tls_endpoint) if s.dh_prime is not None]
    groups: set[tuple[str, int]] = set()
    for suite in dhe:
        assert suite.dh_prime is not None
        bits = suite.dh_prime.bit_length()
        name = known_group(suite.dh_prime) or "the server's own prime"
        rows.append([suite.node, suite.version, suite.name, str(bits), name])
        groups.add((suite.node, suite.dh_prime))
    for node, prime in sorted(groups):
        bits, name = prime.bit_length(), known_group(prime)
        if bits < MIN_DH_BITS:
            weak.append(f"{bits}-bit DH group ({name or 'own prime'}) on {node}")
        elif name and not is_ffdhe(prime):
            shared.append(f"{name} on {node}")
    evidence.table("finite-field DHE groups", rows)

    curve_rows = [["node", "ECDH supported", "curves accepted"]]
    evidence.table("elliptic curves", curve_rows)
    weak_curves: list[str] = []
    missing: list[str] = []
    for node, result in tls_endpoint.each(ScanCommand.ELLIPTIC_CURVES):
        names = [c.name for c in result.supported_curves or ()]
        curve_rows.append([node.label, str(result.supports_ecdh_key_exchange), ", ".join(names)])
        if not result.supports_ecdh_key_exchange:
            continue
        weak_curves += [f"{n} on {node.label}" for n in names if _curve_bits(n) < MIN_EC_BITS]
        if not EXPECTED_CURVES & set(names):
            missing.append(node.label)
    if not dhe and all(row[1] == "False" for row in curve_rows[1:]):
        not_applicable("no ephemeral (EC)DH key exchange accepted (TLS-FS reports it)")
    if shared:
        evidence.warn(
            f"DHE uses a widely shared IKE prime ({'; '.join(shared)}): large enough today, "
            "but RFC 7919's ffdhe groups are the ones TLS clients can name and check"
        )
    if missing:
        evidence.warn(
            f"ECDHE offers neither X25519 nor P-256 on {', '.join(missing)}: most clients "
            "start with one of them"
        )
    expect(
        not weak,
        f"DHE group under {MIN_DH_BITS} bits (Logjam: one precomputation breaks every "
        f"server sharing it): {'; '.join(weak)}",
    )
    expect(
        not weak_curves,
        f"ECDHE curve under 128-bit security accepted: {'; '.join(weak_curves)}",
    )
