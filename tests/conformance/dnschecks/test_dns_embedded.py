"""The DNS suite against the embedded target (``maildrill serve``): every seed control
passes, the others are not applicable with a reason. And DANE-TLSA both ways against the
embedded inbound MX's real certificate: a matching DANE-EE record passes, a wrong digest
or a PKIX usage (not for SMTP) fails exactly DANE-TLSA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.dnsrecords.tlsa import association, served_certificate
from maildrill.embedded import launch
from maildrill.target import Role, Target, load_target
from tests.conformance.dnschecks import zones
from tests.conformance.dnschecks.controls import assert_good_domain
from tests.conformance.suite import run_suites


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with launch(tmp_path_factory.mktemp("dns-lab"), accounts=2) as target_file:
        yield load_target(target_file)


def test_embedded_passes_every_dns_control(lab: Target, tmp_path: Path) -> None:
    assert lab.source is not None
    run = run_suites(lab.source, tmp_path, "dns")
    assert_good_domain(run)


def _tlsa(line: str) -> zones.Change:
    def change(r: zones.Records, _keys: dict[int, str]) -> None:
        r.extra.append(f"_25._tcp.mx1.§ TLSA {line}")

    return change


# variant → the DANE-TLSA verdict it must get (RFC 7672 §3.1)
DANE = {"dane-match": "pass", "dane-mismatch": "fail", "dane-pkix-usage": "fail"}


@pytest.mark.slow  # a DNS suite run per DANE variant
def test_dane_both_ways_on_the_embedded_mx(lab: Target, tmp_path: Path) -> None:
    smtp = lab.endpoint(Role.SMTP)
    assert smtp is not None
    leaf = served_certificate(lab, smtp, [])  # the certificate as served over STARTTLS
    digest = association(leaf, 1, 1).hex()
    keys = {1024: zones.dkim_public(1024), 2048: zones.dkim_public(2048)}
    server = zones.serve(
        zones.build(
            keys,
            only={
                "dane-match": _tlsa(f"3 1 1 {digest}"),
                "dane-mismatch": _tlsa(f"3 1 1 {'00' * 32}"),
                "dane-pkix-usage": _tlsa(f"1 1 1 {digest}"),
            },
        )
    )
    server.start()
    try:
        for label, wanted in DANE.items():
            target = zones.target_file(
                tmp_path,
                label,
                f"127.0.0.1:{server.port}",
                smtp_url=f"smtp://127.0.0.1:{smtp.port}",
                ca_file=lab.ca_path,
            )
            run = run_suites(target, tmp_path, "dns")
            dane = run.controls["DANE-TLSA"]
            assert dane["verdict"] == wanted, (label, run.describe({"DANE-TLSA"}))
            others = run.verdicts("fail", "error") - {"DANE-TLSA"}
            assert not others, (label, run.describe(others))
            kinds = {e["kind"] for e in dane["evidence"]}
            assert {"dns", "transcript", "table"} <= kinds
    finally:
        server.stop()
