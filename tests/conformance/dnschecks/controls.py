"""The DNS suite's control IDs, as the proofs in tests/ need them, and what a good domain
gets from the suite."""

from __future__ import annotations

from tests.conformance.declared import declared
from tests.conformance.suite import SuiteRun

# every control the suite declares, read from its markers
ALL_CONTROLS = frozenset(declared("dns"))
# not in the seed policy: not applicable (with a reason) where the domain publishes none
OPTIONAL_CONTROLS = frozenset({"MTA-STS", "TLSRPT", "DANE-TLSA", "DNSSEC"})
# judged on every domain: a well-configured one passes each of them
SEED_CONTROLS = ALL_CONTROLS - OPTIONAL_CONTROLS


def assert_good_domain(run: SuiteRun) -> None:
    """Every control judged; every seed control passes; an optional one the domain does not
    publish is not applicable, with its reason."""
    assert set(run.controls) == ALL_CONTROLS, run.output
    bad = run.verdicts("fail", "error")
    assert not bad, run.describe(bad)
    assert run.verdicts("pass") >= SEED_CONTROLS
    for cid in run.verdicts("not-applicable"):
        assert cid in OPTIONAL_CONTROLS and run.controls[cid]["reason"], cid
