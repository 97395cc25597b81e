"""The behavioural suite against the embedded target: every control passes or is not
applicable with its reason, each verdict carries the transcript that proves it, no password
reaches results.json, and the test mailboxes are left as they were found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from maildrill.embedded import launch
from maildrill.target import Target, load_target
from tests.conformance.behaviour.evidence import probe_messages_left, transcripts
from tests.conformance.declared import declared
from tests.conformance.suite import SuiteRun, run_suites

CONTROLS = frozenset(declared("behaviour"))

# not applicable on the embedded target, and why: it declares no anti-virus (issue 6 asks
# for not-applicable then); HYG-LOCKOUT only where the lab declares no lockout
ALLOWED_NOT_APPLICABLE = {"FILTER-EICAR[smtp]", "HYG-LOCKOUT[imaps]"}
RUN_BUDGET_S = 120.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, SuiteRun]]:
    root = tmp_path_factory.mktemp("behaviour-lab")
    with launch(root, accounts=3) as target_file:
        yield load_target(target_file), run_suites(target_file, root, "behaviour")


def test_every_control_passes_or_is_not_applicable(lab: tuple[Target, SuiteRun]) -> None:
    _, run = lab
    assert {cid.split("[", 1)[0] for cid in run.controls} == CONTROLS, run.output
    bad = run.verdicts("fail", "error")
    assert not bad, run.describe(bad)
    na = run.verdicts("not-applicable")
    assert na <= ALLOWED_NOT_APPLICABLE, run.describe(na - ALLOWED_NOT_APPLICABLE)
    assert all(run.controls[cid]["reason"] for cid in na), run.describe(na)
    assert run.seconds < RUN_BUDGET_S, f"suite took {run.seconds:.1f} s"


def test_every_verdict_has_its_transcript(lab: tuple[Target, SuiteRun]) -> None:
    _, run = lab
    for cid in run.verdicts("pass"):
        assert transcripts(run.controls[cid]), f"{cid}: no transcript in the evidence"
    # the ones that deliver mail also show the mailbox side
    for cid in ("FILTER-CLEAN[smtp]", "AUTH-DMARC-QUARANTINE[smtp]", "AUTH-DKIM-VERIFY[smtp]"):
        labels = {e["label"] for e in run.controls[cid]["evidence"]}
        assert any("mailbox" in label for label in labels), f"{cid}: {labels}"


def test_no_password_in_results(lab: tuple[Target, SuiteRun]) -> None:
    target, run = lab
    password = target.account(0).password
    assert password not in run.results_text
    assert "<redacted>" in run.results_text or "<credentials redacted>" in run.results_text


def test_test_mailboxes_left_clean(lab: tuple[Target, SuiteRun]) -> None:
    target, _ = lab
    assert target.source is not None
    left = probe_messages_left(target.source)
    assert left and not any(left.values()), f"probe messages left behind: {left}"


def test_results_are_bounded_per_control(lab: tuple[Target, SuiteRun]) -> None:
    _, run = lab
    slow = {cid: c["duration_s"] for cid, c in run.controls.items() if c["duration_s"] > 30}
    assert not slow, f"controls over 30 s on the embedded target: {slow}"
