"""Fixtures of the TLS suite: one sslyze scan per session, shared by every TLS check.

``tls_scan`` scans every TLS endpoint of the target at once (the first TLS check to run
waits for it; the rest read it). ``tls_endpoint`` is the scan of the check's endpoint, or
not-applicable when that endpoint speaks no TLS.
"""

from __future__ import annotations

import pytest

from maildrill.checks import Evidence, not_applicable
from maildrill.target import Endpoint, Target
from maildrill.tls_scan import EndpointScan, TlsScan, scan_target, tls_mode


@pytest.fixture(scope="session")
def tls_scan(target: Target) -> TlsScan:
    return scan_target(target)


@pytest.fixture
def tls_endpoint(tls_scan: TlsScan, endpoint: Endpoint, evidence: Evidence) -> EndpointScan:
    if tls_mode(endpoint) is None:
        not_applicable(f"{endpoint} is plaintext-only ({endpoint.scheme}://): no TLS to verify")
    assert endpoint.role is not None
    scan = tls_scan.endpoint(endpoint.role)
    nodes = [n.label + (" (scanned twice)" if n.attempts > 1 else "") for n in scan.nodes]
    evidence.text(
        "scan",
        f"sslyze, {scan.mode} TLS to {scan.host}:{scan.port} "
        f"(nodes: {', '.join(nodes) or 'none'}); "
        f"whole-target scan took {tls_scan.seconds:g} s",
    )
    return scan
