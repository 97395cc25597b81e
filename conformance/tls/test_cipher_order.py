"""Who picks the cipher suite: the server should, so that a client cannot talk it down to
the weakest suite they share (testssl.sh's ``cipher_order``)."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.target import Endpoint, Target
from maildrill.tls.policy import profile_for
from maildrill.tls.preference import HEADER, ORDER_VERSIONS, probe_order
from maildrill.tls.scan import TLS_ROLES, EndpointScan, accepted_suites


@control(
    "TLS-CIPHER-ORDER",
    "The server enforces its own cipher-suite order (TLS 1.0-1.2)",
    severity="medium",
    reference="RFC 9325 §4.2 (prefer the strongest suites); NCSC-NL TLS guidelines v2.1 "
    "(server preference order); Mozilla 5.7 intermediate/modern: client chooses (warning)",
    roles=TLS_ROLES,
)
def test_cipher_order(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    profile = profile_for(target.policy)
    rows = [["node", *HEADER]]
    evidence.table("suite picked when the client's order is reversed", rows)
    by_node: dict[str, dict[str, list[str]]] = {}
    for suite in accepted_suites(tls_endpoint):
        if suite.version in ORDER_VERSIONS:
            by_node.setdefault(suite.node, {}).setdefault(suite.version, [])
            by_node[suite.node][suite.version].append(suite.openssl_name)
    client_order: list[str] = []
    judged = 0
    for node in tls_endpoint.scanned():
        for version, suites in by_node.get(node.label, {}).items():
            probe = probe_order(tls_endpoint.server_result(node), version, suites)
            rows.append([node.label, *probe.row()])
            # TLS 1.3 has only strong AEAD suites: its order is evidence, not a finding
            if version == "TLSv1.3" or probe.server_chooses is None:
                continue
            judged += 1
            if not probe.server_chooses:
                client_order.append(f"{version} on {node.label}")
    if not judged:
        not_applicable("no TLS 1.0-1.2 version with two or more accepted suites: nothing to choose")
    finding = (
        f"the client chooses the suite ({'; '.join(client_order)}): offered in reverse "
        "order, the server took the client's first suite both times"
    )
    if client_order and not profile.server_order:
        evidence.warn(
            f"{finding}. Policy {profile.name} does not require server order; set "
            "tls_preempt_cipherlist = yes (Postfix) / ssl_prefer_server_ciphers = yes (Dovecot)"
        )
        return
    expect(not client_order, f"policy {profile.name} requires server order; {finding}")
