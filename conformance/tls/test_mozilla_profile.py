"""The whole Mozilla server-side TLS profile, as sslyze's own checker judges it, when the
target's policy is one of Mozilla's (versions, suites, curves, certificate, vulnerabilities,
fallback SCSV, extended master secret)."""

from __future__ import annotations

from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    ServerScanResultIncomplete,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.errors import TLSFailure
from maildrill.target import Endpoint, Target
from maildrill.tls.scan import TLS_ROLES, EndpointScan

_PROFILES = {
    "mozilla-intermediate": TlsConfigurationEnum.MOZILLA_INTERMEDIATE,
    "mozilla-modern": TlsConfigurationEnum.MOZILLA_MODERN,
}


@control(
    "TLS-MOZILLA",
    "Complies with the Mozilla TLS profile (sslyze's checker)",
    severity="medium",
    reference="Mozilla Server Side TLS 5.7 (intermediate/modern), via sslyze.mozilla_tls_profile",
    roles=TLS_ROLES,
)
def test_mozilla_profile(
    target: Target, endpoint: Endpoint, tls_endpoint: EndpointScan, evidence: Evidence
) -> None:
    which = _PROFILES.get(target.policy)
    if which is None:
        not_applicable(
            f"policy {target.policy}: the Mozilla profile is checked under "
            "mozilla-intermediate or mozilla-modern only"
        )
    config = MozillaTlsConfiguration.get(which)
    issues: dict[str, dict[str, str]] = {}
    for node in tls_endpoint.scanned():
        try:
            check_server_against_tls_configuration(tls_endpoint.server_result(node), config)
        except ServerNotCompliantWithTlsConfiguration as exc:
            issues[node.label] = dict(exc.issues)
        except ServerScanResultIncomplete as exc:
            raise TLSFailure(
                f"{node.label}: incomplete scan for the Mozilla checker: {exc}"
            ) from None
    evidence.json(f"Mozilla {which.value} issues by node", issues)
    expect(
        not issues,
        f"not Mozilla {which.value}: "
        + "; ".join(f"{node}: {' '.join(found.values())}" for node, found in issues.items()),
    )
