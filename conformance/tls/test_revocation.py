"""S10: a served certificate can be revoked — its leaf names an OCSP responder or a CRL
(testssl.sh's ``cert_revocation``); OCSP stapling is reported where clients use it."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect
from maildrill.target import Endpoint, Role, Target
from maildrill.tls.certificates import revocation_urls, subject
from maildrill.tls.scan import TLS_ROLES, EndpointScan, certificate_deployments


@control(
    "CERT-REVOCATION",
    "The certificate names an OCSP responder or a CRL; OCSP stapling where clients use it",
    severity="medium",
    reference="RFC 5280 §4.2.1.13 (CRL distribution points), §4.2.2.1 (AIA: OCSP); "
    "RFC 6960; RFC 6066 §8 (stapling); RFC 7633 (must-staple); CA/B Forum BR §7.1.2.3",
    roles=TLS_ROLES,
)
def test_revocation(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    rows = [["node", "leaf", "OCSP responder", "CRL", "OCSP stapled", "must-staple"]]
    evidence.table("revocation information", rows)
    found = certificate_deployments(tls_endpoint)
    expect(found, "the server sent no certificate")
    unrevocable, unstapled, broken_promise = [], [], []
    for node, deployment in found:
        leaf = deployment.received_certificate_chain[0]
        ocsp, crl = revocation_urls(leaf)
        stapled = deployment.ocsp_response is not None
        must = bool(deployment.leaf_certificate_has_must_staple_extension)
        rows.append([node.label, subject(leaf), ", ".join(ocsp) or "none",
                     ", ".join(crl) or "none", str(stapled), str(must)])  # fmt: skip
        if not ocsp and not crl:
            unrevocable.append(node.label)
        if not stapled:
            unstapled.append(node.label)
            if must:
                broken_promise.append(node.label)
    if unstapled and endpoint.role is Role.WEBMAIL:
        evidence.warn(
            f"no OCSP response stapled on {', '.join(unstapled)}: browsers then ask the "
            "responder themselves, or not at all (nginx: ssl_stapling on)"
        )
    elif unstapled:
        evidence.text(
            "stapling",
            "no OCSP response stapled: not a finding on a mail port — Postfix and Dovecot "
            "cannot staple, and mail clients rarely check revocation at all",
        )
    expect(
        not broken_promise,
        f"the leaf carries the must-staple extension (RFC 7633) but no OCSP response is "
        f"stapled on {', '.join(broken_promise)}: clients that honour it refuse the connection",
    )
    expect(
        not unrevocable,
        f"the leaf names neither an OCSP responder nor a CRL distribution point on "
        f"{', '.join(unrevocable)}: once its key leaks, no client can learn it was revoked",
    )
