"""Each certificate control fails on a certificate with exactly its weakness, and only then;
a certificate with fewer than 30 days left passes CERT-EXPIRY with a warning.

One HTTPS endpoint per case (:mod:`tests.conformance.tls.pki`), scanned by the whole TLS
suite; the certificate controls' verdicts are compared with what the case should break."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.suite import run_suites
from tests.conformance.tls.pki import Leaf, https_target

CERT_CONTROLS = {
    "CERT-CHAIN",
    "CERT-EXPIRY",
    "CERT-KEY",
    "CERT-REVOCATION",
    "CERT-SAN",
    "CERT-SIGALG",
}
# Python's ssl cannot staple an OCSP response: on HTTPS that is a warning in every case
STAPLING_WARNING = "CERT-REVOCATION[webmail]"

CASES = {
    "good": (Leaf(), set()),
    "expires-in-5-days": (Leaf(days_left=5), {"CERT-EXPIRY"}),
    # under 30 days: still a pass, with a warning (below)
    "expires-in-20-days": (Leaf(days_left=20), set()),
    "rsa-1024": (Leaf(key_bits=1024), {"CERT-KEY"}),
    # a SHA-1 signature is also refused by the path validation (CA/B Forum, RFC 9155)
    "sha1-signature": (Leaf(digest="sha1"), {"CERT-SIGALG", "CERT-CHAIN"}),
    # CERT-CHAIN validates the path as RFC 9325 §7.1 has it, the host name included
    "san-names-another-host": (
        Leaf(dns_names=("mail.elsewhere.test",), ip=None),
        {"CERT-SAN", "CERT-CHAIN"},
    ),
    "unknown-ca": (Leaf(trusted=False), {"CERT-CHAIN"}),
    "no-ocsp-no-crl": (Leaf(revocation=False), {"CERT-REVOCATION"}),
}


# the others take a whole TLS suite run each too
FAST = {"good", "expires-in-5-days", "no-ocsp-no-crl"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[] if c in FAST else [pytest.mark.slow]) for c in sorted(CASES)]
)
def test_each_certificate_weakness_fails_exactly_its_control(tmp_path: Path, case: str) -> None:
    leaf, weak = CASES[case]
    with https_target(tmp_path / case, leaf) as target:
        run = run_suites(target, tmp_path)
    verdicts = {cid.split("[", 1)[0]: c["verdict"] for cid, c in run.controls.items()}
    failed = {c for c in CERT_CONTROLS if verdicts.get(c) == "fail"}
    passed = {c for c in CERT_CONTROLS if verdicts.get(c) == "pass"}
    ids = {f"{c}[webmail]" for c in CERT_CONTROLS}
    assert failed == weak, run.describe(ids)
    assert passed == CERT_CONTROLS - weak, run.describe(ids)
    for control in weak:
        assert run.controls[f"{control}[webmail]"]["reason"], run.describe(ids)
    warned = {cid for cid, c in run.controls.items() if c["warnings"]} - {STAPLING_WARNING}
    if case == "expires-in-20-days":
        assert warned == {"CERT-EXPIRY[webmail]"}, run.describe(ids)
        assert "expires within 30 days" in run.controls["CERT-EXPIRY[webmail]"]["warnings"][0]
    else:
        assert not warned & ids, run.describe(warned)
    stapling = run.controls[STAPLING_WARNING]["warnings"]
    assert stapling and "no OCSP response stapled" in stapling[0], run.describe(ids)
