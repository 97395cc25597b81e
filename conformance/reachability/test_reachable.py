"""S9: every configured endpoint answers on every address its host name resolves to."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, subject
from maildrill.dnsrecords.resolver import endpoint_addresses
from maildrill.errors import TargetError
from maildrill.target import Endpoint, Role, Target
from maildrill.tls.context import tls_context
from maildrill.wire import Wire


@control(
    "REACH-CONNECT",
    "Endpoint accepts connections on every node",
    severity="critical",
    reference="seed S9 (ports open), S4 (every A/AAAA of the name serves)",
    roles=list(Role),
)
def test_every_node_accepts(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with subject("DNS"):
        nodes = endpoint_addresses(target, endpoint)
    rows = [["address", "port", "result"]]
    evidence.table("nodes", rows)
    failures = []
    for address in nodes:
        try:
            wire = Wire.connect(address, endpoint.host, timeout=5.0)
            try:
                if endpoint.implicit_tls:
                    wire.start_tls(tls_context(target, verify=False))
            finally:
                wire.close()
        except TargetError as exc:
            rows.append([address[0], str(address[1]), f"failed: {exc}"])
            failures.append(f"{address[0]}:{address[1]} ({exc})")
        else:
            rows.append([address[0], str(address[1]), "accepted"])
    expect(not failures, f"{endpoint.host}: not served on {'; '.join(failures)}")
