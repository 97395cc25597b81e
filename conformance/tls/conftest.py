"""Fixtures of the TLS suite: one sslyze scan per session, shared by every TLS check.

``tls_scan`` scans every TLS endpoint of the target at once (the first TLS check to run
waits for it; the rest read it). ``tls_endpoint`` is the scan of the check's endpoint, or
not-applicable when that endpoint speaks no TLS.
"""

from __future__ import annotations

import pytest

from maildrill.controls.api import Evidence, not_applicable
from maildrill.controls.preflight import Blocker
from maildrill.target import Endpoint, Role, Target
from maildrill.tls.scan import EndpointScan, TlsScan, scan_target, tls_mode, tls_roles
from maildrill.wire import blocked_reason


@pytest.fixture(scope="session")
def tls_scan(target: Target, blockers: dict[Role, Blocker]) -> TlsScan:
    # an endpoint that hangs or talks nonsense is not scanned: its checks end blocked
    return scan_target(target, roles=[r for r in tls_roles(target) if r not in blockers])


@pytest.fixture
def tls_endpoint(tls_scan: TlsScan, endpoint: Endpoint, evidence: Evidence) -> EndpointScan:
    if tls_mode(endpoint) is None:
        not_applicable(f"{endpoint} is plaintext-only ({endpoint.scheme}://): no TLS to verify")
    assert endpoint.role is not None
    reason = blocked_reason(endpoint)
    if reason is not None:  # not scanned; a check that reads the scan ends blocked
        return EndpointScan(endpoint.role, endpoint.host, endpoint.port, "-", blocked=reason)
    scan = tls_scan.endpoint(endpoint.role)
    nodes = [n.label + (" (scanned twice)" if n.attempts > 1 else "") for n in scan.nodes]
    evidence.text(
        "scan",
        f"sslyze, {scan.mode} TLS to {scan.host}:{scan.port} "
        f"(nodes: {', '.join(nodes) or 'none'}); "
        f"whole-target scan took {tls_scan.seconds:g} s",
    )
    return scan
