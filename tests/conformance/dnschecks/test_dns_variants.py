"""Both-ways proofs of conformance/dns: the good domain passes every DNS control; each
variant with one weakness fails exactly the control that names it; a resolver that never
answers gives verdict error, after one retry, in bounded time.

(This directory is not named ``dns``: pytest would import it as a top-level ``dns``
package and shadow dnspython.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conformance.dnschecks import zones
from tests.conformance.dnschecks.controls import ALL_CONTROLS, assert_good_domain
from tests.conformance.suite import SuiteRun, run_suites

# some 25 DNS suite runs and a resolver left unanswered; test_dns_embedded is the quick one
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def resolver() -> Iterator[str]:
    keys = {1024: zones.dkim_public(1024), 2048: zones.dkim_public(2048)}
    server = zones.serve(zones.build(keys))
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def runs(resolver: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteRun]:
    """Every variant's results; the runs are independent, so four go at a time."""
    directory = tmp_path_factory.mktemp("dns-variants")
    labels = [*zones.WEAK, *zones.GOOD_TOO]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            label: pool.submit(
                run_suites, zones.target_file(directory, label, resolver), directory, "dns"
            )
            for label in labels
        }
    return {label: future.result() for label, future in futures.items()}


@pytest.mark.parametrize("label", sorted(zones.GOOD_TOO))
def test_good_domain_passes(runs: dict[str, SuiteRun], label: str) -> None:
    run = runs[label]
    assert_good_domain(run)


def test_optional_records_are_required_under_ncsc(tmp_path: Path, resolver: str) -> None:
    # under seed the good domain's missing MTA-STS/TLS-RPT/DNSSEC are not applicable; under
    # a policy that asks for them they fail (DANE stays not applicable: no TLSA published)
    target = zones.target_file(tmp_path, "good", resolver, policy="ncsc")
    run = run_suites(target, tmp_path, "dns")
    assert run.verdicts("fail") == {"MTA-STS", "TLSRPT", "DNSSEC"}, run.describe(set(run.controls))
    assert run.verdicts("not-applicable") == {"DANE-TLSA"}


@pytest.mark.parametrize("label", sorted(zones.WEAK))
def test_weak_variant_fails_exactly_its_control(runs: dict[str, SuiteRun], label: str) -> None:
    control, _change = zones.WEAK[label]
    run = runs[label]
    assert run.verdicts("error") == set(), run.describe(run.verdicts("error"))
    assert run.verdicts("fail") == {control}, run.describe(run.verdicts("fail") | {control})
    failed = run.controls[control]
    assert failed["reason"]
    assert any(e["kind"] == "dns" and len(e["data"]) > 1 for e in failed["evidence"])


def test_pct_evidence_reports_dmarcbis(runs: dict[str, SuiteRun]) -> None:
    # seed S13 requires pct=100; RFC 9989 removed pct: the result must say both
    pct = runs["dmarc-pct50"].controls["DMARC-PCT"]
    assert "pct=50" in pct["reason"] and "RFC 9989" in pct["reason"]
    texts = [e["data"] for e in pct["evidence"] if e["kind"] == "text"]
    assert any("RFC 9989" in t and "S13" in t for t in texts)


def test_unanswered_dns_is_an_error_after_one_retry(tmp_path: Path) -> None:
    hole = zones.Blackhole()
    try:
        target = zones.target_file(tmp_path, "silent", f"127.0.0.1:{hole.port}", timeout=0.3)
        started = time.perf_counter()
        results = run_suites(target, tmp_path, "dns").controls
        elapsed = time.perf_counter() - started
    finally:
        hole.close()
    judged = {k: v for k, v in results.items() if k in ALL_CONTROLS}
    assert set(judged) == ALL_CONTROLS
    assert judged and {v["verdict"] for v in judged.values()} == {"error"}
    assert all("no answer after one retry" in v["reason"] for v in judged.values())
    # each unanswered question was sent exactly twice: once, and one retry
    asked = [
        line
        for v in results.values()
        for e in v["evidence"]
        if e["kind"] == "dns"
        for line in e["data"]
        if "no answer after one retry" in line
    ]
    assert asked and len(hole.questions) == 2 * len(asked)
    # bounded: each control gives up after two tries of 0.3 s (slack for a loaded machine)
    assert max(v["duration_s"] for v in judged.values()) < 2 * 0.3 + 1.5
    assert elapsed < 120
