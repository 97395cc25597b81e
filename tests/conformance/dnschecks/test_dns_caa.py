"""DNS-CAA both ways on scripted zones: CAA naming the CA the target file names passes
clean; no CAA passes with a warning; CAA naming another CA fails; without
``expect.caa_issuers`` only presence is judged, and the warning says so.

The check is called in this process, one scripted zone per variant, so the proof stays in
the quick tier; the whole DNS suite through the plugin on the ``caa-*`` variants (each
fails exactly DNS-CAA) is test_dns_variants.py's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maildrill.controls.api import Evidence
from maildrill.dnsrecords.caa import Property, RelevantSet
from maildrill.target import load_target
from tests.conformance.dnschecks import zones
from tests.conformance.suite import check_module

check = check_module("dns/test_caa.py")  # loaded from its file: pytest does not collect it here

# variant → (how its zone differs from good, the CAs its target file names)
VARIANTS: dict[str, tuple[zones.Change, tuple[str, ...]]] = {
    "caa-good": (lambda r, k: None, (zones.CA,)),
    "caa-missing": (zones.GOOD_TOO["caa-missing"], (zones.CA,)),
    "caa-other-ca": (zones.WEAK["caa-other-ca"][1], (zones.CA,)),
    "caa-host-other-ca": (zones.WEAK["caa-host-other-ca"][1], (zones.CA,)),
    "caa-unnamed": (lambda r, k: None, ()),
    "caa-missing-unnamed": (zones.GOOD_TOO["caa-missing"], ()),
}


def _judge(target_file: Path) -> dict[str, Any]:
    """DNS-CAA's verdict, reason, warnings and evidence, as the plugin would record them."""
    evidence = Evidence()
    verdict, reason = "pass", ""
    try:
        check.test_caa(load_target(target_file), evidence)
    except pytest.fail.Exception as exc:
        verdict, reason = "fail", str(exc)
    items = [item.model_dump(mode="json") for item in evidence.items()]
    return {
        "verdict": verdict,
        "reason": reason,
        "warnings": evidence.warnings(),
        "evidence": items,
    }


@pytest.fixture(scope="module")
def caa_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """DNS-CAA's result on each variant (the DKIM keys are not looked at: a dummy)."""
    directory = tmp_path_factory.mktemp("dns-caa")
    keys = {1024: "AA==", 2048: "AA=="}
    server = zones.serve(zones.build(keys, only={k: c for k, (c, _i) in VARIANTS.items()}))
    server.start()
    resolver = f"127.0.0.1:{server.port}"
    try:
        yield {
            label: _judge(zones.target_file(directory, label, resolver, caa_issuers=issuers))
            for label, (_change, issuers) in VARIANTS.items()
        }
    finally:
        server.stop()


def test_caa_naming_the_ca_passes_clean(caa_runs: dict[str, dict[str, Any]]) -> None:
    result = caa_runs["caa-good"]
    assert (result["verdict"], result["warnings"]) == ("pass", []), result
    (table,) = [e["data"] for e in result["evidence"] if e["kind"] == "table"]
    # the host inherits the domain's set, found by climbing (RFC 8659 §3)
    assert ["mx1.caa-good.test", "caa-good.test"] in [row[:2] for row in table]


def test_no_caa_warns(caa_runs: dict[str, dict[str, Any]]) -> None:
    result = caa_runs["caa-missing"]
    assert result["verdict"] == "pass", result
    (warning,) = result["warnings"]
    assert "no CAA record" in warning and "mx1.caa-missing.test" in warning
    assert "expect.caa_issuers" not in warning  # the CA is named; it does not matter here


@pytest.mark.parametrize("label", ["caa-other-ca", "caa-host-other-ca"])
def test_caa_naming_another_ca_fails(caa_runs: dict[str, dict[str, Any]], label: str) -> None:
    result = caa_runs[label]
    assert result["verdict"] == "fail", result
    assert f"lets only {zones.OTHER_CA} issue, not {zones.CA}" in result["reason"]
    assert any(e["kind"] == "dns" and len(e["data"]) > 1 for e in result["evidence"])


def test_closest_set_decides(caa_runs: dict[str, dict[str, Any]]) -> None:
    # the domain authorises the CA, mx1's own set does not: only mx1 is refused
    reason = caa_runs["caa-host-other-ca"]["reason"]
    assert reason.startswith("mx1.caa-host-other-ca.test: CAA at mx1.caa-host-other-ca.test")


def test_without_named_issuer_only_presence_is_judged(
    caa_runs: dict[str, dict[str, Any]],
) -> None:
    present, absent = caa_runs["caa-unnamed"], caa_runs["caa-missing-unnamed"]
    assert present["verdict"] == absent["verdict"] == "pass", (present, absent)
    (warning,) = present["warnings"]
    assert "expect.caa_issuers names no CA, so only the presence of CAA was judged" in warning
    (warning,) = absent["warnings"]
    assert "no CAA record" in warning and "expect.caa_issuers names no CA" in warning


def test_refusal_rules() -> None:
    """RFC 8659 §4.1, §4.2 on a record set, without DNS."""

    def caa(*records: tuple[int, str, str]) -> RelevantSet:
        return RelevantSet("example.test", tuple(Property(*r) for r in records))

    assert caa((0, "issue", "ca.test; account=1")).refusal("CA.test") is None
    assert caa((0, "issue", "ca.test")).refusal("other.test")
    assert caa((0, "iodef", "mailto:x@example.test")).refusal("other.test") is None
    assert caa((0, "issue", ";")).refusal() == (
        'CAA at example.test lets no CA issue (issue ";", RFC 8659 §4.2)'
    )
    assert caa((0, "issue", "ca.test"), (128, "future", "x")).refusal("ca.test")
    assert caa((0, "issue", "ca.test"), (0, "future", "x")).refusal("ca.test") is None
    assert caa((128, "issuewild", ";"), (0, "Issue", "ca.test")).refusal("ca.test") is None
