"""Known TLS implementation flaws, each read from the session's sslyze scan."""

from __future__ import annotations

from sslyze.plugins.robot.implementation import RobotScanResultEnum
from sslyze.plugins.scan_commands import ScanCommand

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.target import Endpoint, Target
from maildrill.tls.scan import TLS_ROLES, EndpointScan, accepted_versions


def _pre_tls13(scan: EndpointScan) -> bool:
    return any(
        accepted and version != "TLSv1.3" for _, version, accepted in accepted_versions(scan)
    )


@control(
    "TLS-COMPRESSION",
    "TLS compression is off",
    severity="medium",
    reference="RFC 9325 §3.3 (CRIME); Mozilla intermediate",
    roles=TLS_ROLES,
)
def test_compression(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    rows = [["node", "supports compression"]]
    evidence.table("TLS compression", rows)
    for node, result in tls_endpoint.each(ScanCommand.TLS_COMPRESSION):
        rows.append([node.label, str(result.supports_compression)])
    on = [row[0] for row in rows[1:] if row[1] == "True"]
    expect(not on, f"TLS compression (CRIME) is accepted on {', '.join(on)}")


@control(
    "TLS-RENEG",
    "Secure renegotiation (RFC 5746) is supported",
    severity="medium",
    reference="RFC 5746 §3; RFC 9325 §3.5",
    roles=TLS_ROLES,
)
def test_secure_renegotiation(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    if not _pre_tls13(tls_endpoint):
        not_applicable("only TLS 1.3 is accepted; it has no renegotiation (RFC 8446 §4.1.2)")
    rows = [["node", "secure renegotiation", "client-initiated renegotiations accepted"]]
    evidence.table("renegotiation", rows)
    insecure = []
    for node, result in tls_endpoint.each(ScanCommand.SESSION_RENEGOTIATION):
        rows.append(
            [
                node.label,
                str(result.supports_secure_renegotiation),
                str(result.client_renegotiations_success_count),
            ]
        )
        if not result.supports_secure_renegotiation:
            insecure.append(node.label)
    expect(not insecure, f"no secure renegotiation (RFC 5746) on {', '.join(insecure)}")


@control(
    "TLS-HEARTBLEED",
    "Not vulnerable to Heartbleed",
    severity="critical",
    reference="CVE-2014-0160",
    roles=TLS_ROLES,
)
def test_heartbleed(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    results = tls_endpoint.each(ScanCommand.HEARTBLEED)
    evidence.table(
        "heartbleed",
        [["node", "vulnerable"]]
        + [[n.label, str(r.is_vulnerable_to_heartbleed)] for n, r in results],
    )
    bad = [n.label for n, r in results if r.is_vulnerable_to_heartbleed]
    expect(not bad, f"vulnerable to Heartbleed (CVE-2014-0160) on {', '.join(bad)}")


@control(
    "TLS-ROBOT",
    "Not an RSA padding oracle (ROBOT)",
    severity="high",
    reference="CVE-2017-13099 (ROBOT); RFC 9325 §4.1 (no RSA key transport)",
    roles=TLS_ROLES,
)
def test_robot(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    results = tls_endpoint.each(ScanCommand.ROBOT)
    evidence.table(
        "ROBOT",
        [["node", "sslyze verdict"]] + [[n.label, r.robot_result.value] for n, r in results],
    )
    safe = {
        RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE,
        RobotScanResultEnum.NOT_VULNERABLE_RSA_NOT_SUPPORTED,
    }
    # an inconclusive probe is not a pass: it is reported as what it is
    bad = [f"{n.label} ({r.robot_result.value})" for n, r in results if r.robot_result not in safe]
    expect(not bad, f"ROBOT oracle or inconclusive result on {', '.join(bad)}")


@control(
    "TLS-CCS",
    "Not vulnerable to OpenSSL CCS injection",
    severity="high",
    reference="CVE-2014-0224",
    roles=TLS_ROLES,
)
def test_ccs_injection(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    results = tls_endpoint.each(ScanCommand.OPENSSL_CCS_INJECTION)
    evidence.table(
        "CCS injection",
        [["node", "vulnerable"]]
        + [[n.label, str(r.is_vulnerable_to_ccs_injection)] for n, r in results],
    )
    bad = [n.label for n, r in results if r.is_vulnerable_to_ccs_injection]
    expect(not bad, f"vulnerable to CCS injection (CVE-2014-0224) on {', '.join(bad)}")
