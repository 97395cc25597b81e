"""Both-ways proofs of conformance/dns: the good domain passes every DNS control; each
variant with one weakness fails exactly the control that names it; a resolver that never
answers gives verdict error, after one retry, in bounded time.

(This directory is not named ``dns``: pytest would import it as a top-level ``dns``
package and shadow dnspython.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.dnschecks import zones
from tests.conformance.dnschecks.suite import ALL_CONTROLS, OPTIONAL_CONTROLS, SEED_CONTROLS

SUITE = Path(__file__).resolve().parents[3] / "conformance" / "dns"
# some 25 DNS suite runs and a resolver left unanswered; test_dns_embedded is the quick one
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def resolver() -> Iterator[str]:
    keys = {1024: zones.dkim_public(1024), 2048: zones.dkim_public(2048)}
    server = zones.serve(zones.build(keys))
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop()


Results = dict[str, dict[str, Any]]  # control ID -> its ControlResult as JSON


def run_suite(directory: Path, target: Path, *args: str) -> Results:
    """Run conformance/dns as ``maildrill check`` would (the plugin, a results file), in a
    child process: each run starts clean, as a user's does."""
    out = target.with_suffix(".json")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(SUITE),
            "-c",
            str(SUITE.parent / "pytest.ini"),
            "--target",
            str(target),
            "--results",
            str(out),
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ],
        cwd=directory,
        capture_output=True,
        check=False,
        timeout=120,
    )
    return {c["id"]: c for c in json.loads(out.read_text())["controls"]}


@pytest.fixture(scope="module")
def runs(resolver: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Results]:
    """Every variant's results; the runs are independent, so four go at a time."""
    directory = tmp_path_factory.mktemp("dns-variants")
    labels = [*zones.WEAK, *zones.GOOD_TOO]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            label: pool.submit(run_suite, directory, zones.target_file(directory, label, resolver))
            for label in labels
        }
    return {label: future.result() for label, future in futures.items()}


def verdicts(results: dict[str, dict[str, str]], wanted: str) -> set[str]:
    return {cid for cid, c in results.items() if c["verdict"] == wanted}


@pytest.mark.parametrize("label", sorted(zones.GOOD_TOO))
def test_good_domain_passes(runs: dict[str, Results], label: str) -> None:
    results = runs[label]
    assert set(results) == ALL_CONTROLS
    bad = {k: v["reason"] for k, v in results.items() if v["verdict"] in ("fail", "error")}
    assert not bad
    assert verdicts(results, "pass") >= SEED_CONTROLS
    for cid in verdicts(results, "not-applicable"):
        assert cid in OPTIONAL_CONTROLS and results[cid]["reason"], cid


def test_optional_records_are_required_under_ncsc(tmp_path: Path, resolver: str) -> None:
    # under seed the good domain's missing MTA-STS/TLS-RPT/DNSSEC are not applicable; under
    # a policy that asks for them they fail (DANE stays not applicable: no TLSA published)
    target = zones.target_file(tmp_path, "good", resolver, policy="ncsc")
    results = run_suite(tmp_path, target)
    assert verdicts(results, "fail") == {"MTA-STS", "TLSRPT", "DNSSEC"}
    assert verdicts(results, "not-applicable") == {"DANE-TLSA"}


@pytest.mark.parametrize("label", sorted(zones.WEAK))
def test_weak_variant_fails_exactly_its_control(runs: dict[str, Results], label: str) -> None:
    control, _change = zones.WEAK[label]
    results = runs[label]
    assert verdicts(results, "error") == set(), {
        k: results[k]["reason"] for k in verdicts(results, "error")
    }
    assert verdicts(results, "fail") == {control}
    failed = results[control]
    assert failed["reason"]
    assert any(e["kind"] == "dns" and len(e["data"]) > 1 for e in failed["evidence"])


def test_pct_evidence_reports_dmarcbis(runs: dict[str, Results]) -> None:
    # seed S13 requires pct=100; RFC 9989 removed pct: the result must say both
    results = runs["dmarc-pct50"]
    pct = results["DMARC-PCT"]
    assert "pct=50" in pct["reason"] and "RFC 9989" in pct["reason"]
    texts = [e["data"] for e in pct["evidence"] if e["kind"] == "text"]
    assert any("RFC 9989" in t and "S13" in t for t in texts)


def test_unanswered_dns_is_an_error_after_one_retry(tmp_path: Path) -> None:
    hole = zones.Blackhole()
    try:
        target = zones.target_file(tmp_path, "silent", f"127.0.0.1:{hole.port}", timeout=0.3)
        started = time.perf_counter()
        results = run_suite(tmp_path, target)
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
