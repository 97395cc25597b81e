"""The DNS suite (conformance/dns, issue 5) proven both ways on the real reference stack
(Knot DNS serving the zone): the good profile passes every DNS control (or it does not
apply, with a reason); the weak profile fails exactly the DNS controls its weaknesses.toml
entries name, and no other DNS control.

Lives under tests/stack/ to share that directory's session fixtures (one stack per profile).
"""

from __future__ import annotations

import pytest

from maildrill.stack import load_weaknesses
from tests.conformance.dnschecks.controls import ALL_CONTROLS
from tests.conformance.suite import SuiteRun, run_suites
from tests.stack.conftest import RunningStack

pytestmark = pytest.mark.stack


def _weak_controls() -> set[str]:
    """The DNS controls the weak profile's weaknesses name (the file lists other suites' too)."""
    return {c for w in load_weaknesses() for c in w.controls if c in ALL_CONTROLS}


def _run(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    out = tmp_path_factory.mktemp(f"dns-{stack.profile}")
    return run_suites(stack.root / "target.toml", out, "dns")


def test_good_stack_passes_every_dns_control(
    good_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run = _run(good_stack, tmp_path_factory)
    assert set(run.controls) == ALL_CONTROLS, run.output
    bad = run.verdicts("fail") | run.verdicts("error")
    assert not bad, run.describe(bad)
    for cid in run.verdicts("not-applicable"):
        assert run.controls[cid]["reason"], cid  # N/A always says why
    # Knot's CAA names the lab CA, which the target file names (expect.caa_issuers)
    assert run.controls["DNS-CAA"]["warnings"] == [], run.controls["DNS-CAA"]


def test_weak_stack_fails_exactly_its_dns_weaknesses(
    weak_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run = _run(weak_stack, tmp_path_factory)
    expected = _weak_controls()
    # dkim-weak-key, spf-softfail, dmarc-none, dns-caa-other-ca
    assert expected == {"DKIM-KEY-SIZE", "SPF-ALL", "DMARC-POLICY", "DNS-CAA"}
    assert run.verdicts("error") == set(), run.describe(run.verdicts("error"))
    assert run.verdicts("fail") == expected, run.describe(run.verdicts("fail") | expected)
    for cid in expected:
        assert any(e["kind"] == "dns" for e in run.controls[cid]["evidence"]), cid
    assert (
        "lets only letsencrypt.org issue, not pki.example.test"
        in (run.controls["DNS-CAA"]["reason"])
    )
