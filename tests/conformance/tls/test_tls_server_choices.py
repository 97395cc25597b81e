"""TLS-CIPHER-ORDER, TLS-CBC and TLS-DH-PARAMS both ways (issue 17): one HTTPS endpoint
per case, configured with exactly one of the choices testssl.sh reports (client suite
order, CBC suites, a small or shared DH prime, a small curve), scanned by the whole TLS
suite. Each case names the controls that must fail and those that must carry a warning;
every other control of the endpoint must pass (or not apply) without one.

Where the target's policy does not require a thing (seed lets the client choose and
allows AES-CBC), the control passes with a warning; under a profile that forbids it, the
same server fails it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sslyze.plugins.scan_commands import ScanCommand

from maildrill.controls.api import Evidence
from maildrill.tls.dhgroups import ffdhe, modp
from tests.conformance.suite import check_module, run_suites
from tests.conformance.tls.pki import Leaf, TlsServer, https_target

key_exchange = check_module("tls/test_key_exchange.py")

# Python's ssl cannot staple OCSP: CERT-REVOCATION warns on every HTTPS case
STAPLING = "CERT-REVOCATION"
DHE = "ECDHE+AESGCM:DHE+AESGCM"
CBC = "ECDHE+AESGCM:ECDHE+AES"  # adds ECDHE-RSA-AES128-SHA256 and friends

# case: (server, controls that fail, controls that warn)
CASES: dict[str, tuple[TlsServer, set[str], set[str]]] = {
    "good": (TlsServer(), set(), set()),
    "client-order-seed": (TlsServer(client_order=True), set(), {"TLS-CIPHER-ORDER"}),
    "client-order-ncsc": (
        TlsServer(client_order=True, policy="ncsc"),
        {"TLS-CIPHER-ORDER"},
        set(),
    ),
    "cbc-seed": (TlsServer(ciphers=CBC), set(), {"TLS-CBC"}),
    # Mozilla intermediate lists no CBC suite: its suite list and its checker agree
    "cbc-mozilla-intermediate": (
        TlsServer(ciphers=CBC, policy="mozilla-intermediate"),
        {"TLS-CBC", "TLS-CIPHERS-POLICY", "TLS-MOZILLA"},
        set(),
    ),
    # OpenSSL 3 refuses a 1024-bit group at its default security level 2
    "dh-1024": (
        TlsServer(ciphers=f"{DHE}:@SECLEVEL=1", dh_prime=modp(1024)),
        {"TLS-DH-PARAMS"},
        set(),
    ),
    "dh-modp-2048": (TlsServer(ciphers=DHE, dh_prime=modp(2048)), set(), {"TLS-DH-PARAMS"}),
    "dh-ffdhe2048": (TlsServer(ciphers=DHE, dh_prime=ffdhe(2048)), set(), set()),
}
FAST = {"good", "client-order-ncsc", "dh-1024"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[] if c in FAST else [pytest.mark.slow]) for c in CASES]
)
def test_each_server_choice_fails_or_warns_exactly_its_control(tmp_path: Path, case: str) -> None:
    server, failing, warning = CASES[case]
    with https_target(tmp_path / case, Leaf(), server) as target:
        run = run_suites(target, tmp_path)
    mine = {cid for cid in run.controls if cid.endswith("[webmail]")}
    base = {cid: cid.split("[", 1)[0] for cid in mine}
    failed = {base[cid] for cid in mine if run.controls[cid]["verdict"] in ("fail", "error")}
    assert failed == failing, run.describe(mine)
    warned = {base[cid] for cid in mine if run.controls[cid]["warnings"]} - {STAPLING}
    assert warned == warning, run.describe(mine)
    for control in failing:
        assert run.controls[f"{control}[webmail]"]["reason"], run.describe(mine)
    assert run.verdicts("error") == set(), run.describe(run.verdicts("error"))


# -- curves, at the level of sslyze's result ------------------------------------------------
# A server offering a small curve *besides* the usual ones cannot be built with Python's ssl
# (set_ecdh_curve sets one curve, and one small curve alone locks out every modern client),
# so the curve rule is given sslyze's ELLIPTIC_CURVES result directly.


class _CurvesOnly:
    """An EndpointScan stand-in: one node, no DHE suite, the given accepted curves."""

    node = SimpleNamespace(label="192.0.2.7:465")

    def __init__(self, curves: list[str]) -> None:
        self.curves = curves

    def scanned(self) -> list[Any]:
        no_suites = SimpleNamespace(accepted_cipher_suites=[], is_tls_version_supported=False)
        return [SimpleNamespace(label=self.node.label, get=lambda command: no_suites)]

    def each(self, command: ScanCommand) -> list[tuple[Any, Any]]:
        assert command is ScanCommand.ELLIPTIC_CURVES
        curves = [SimpleNamespace(name=name) for name in self.curves]
        return [(self.node, SimpleNamespace(supports_ecdh_key_exchange=True,
                                            supported_curves=curves))]  # fmt: skip


def _judge(curves: list[str], evidence: Evidence) -> None:
    key_exchange.test_key_exchange_groups(None, None, _CurvesOnly(curves), evidence)


def test_a_curve_under_128_bit_security_fails() -> None:
    _judge(["X25519", "secp256r1"], Evidence())
    with pytest.raises(pytest.fail.Exception, match=r"secp224r1 on 192\.0\.2\.7:465"):
        _judge(["X25519", "secp224r1", "secp256r1"], Evidence())


def test_neither_x25519_nor_p256_is_a_warning() -> None:
    evidence = Evidence()
    _judge(["secp384r1", "secp521r1"], evidence)
    (warning,) = evidence.warnings()
    assert "neither X25519 nor P-256" in warning
