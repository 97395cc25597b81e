"""The gate as a pure decision (maildrill.controls.gate.decide), without rendering anything."""

from __future__ import annotations

from datetime import date

from maildrill.controls.gate import decide
from maildrill.controls.waivers import Waiver, Waivers
from maildrill.results import RunResults, SloCheck, SloVerdict
from tests.reports import sample

TODAY = date(2025, 4, 1)
FAILURES = ["TLS-VER[smtp]", "SMTP-LONGCMD[smtp]", "DMARC-PCT", "DKIM-KEY[sel1]"]


def _waivers(controls: list[str], expires: date = date(2025, 12, 31)) -> Waivers:
    return Waivers(
        waiver=[
            Waiver(control=c, justification="OPS-1", owner="ops@example.test", expires=expires)
            for c in controls
        ]
    )


def _passing() -> RunResults:
    run = sample.run()
    return run.model_copy(update={"controls": [c for c in run.controls if c.verdict == "pass"]})


def test_a_clean_run_passes_and_a_failing_one_fails() -> None:
    assert decide(_passing(), None, TODAY) == 0
    assert decide(sample.run(), None, TODAY) == 1


def test_waived_failures_pass_and_an_unwaived_one_fails() -> None:
    assert decide(sample.run(), _waivers(FAILURES), TODAY) == 0
    assert decide(sample.run(), _waivers(FAILURES[1:]), TODAY) == 1


def test_an_expired_waiver_fails_the_gate_even_on_a_clean_run() -> None:
    # an expired waiver is a decision someone owes: the gate says so until it is renewed
    assert decide(_passing(), _waivers(["DMARC-PCT"], expires=TODAY), TODAY) == 0
    assert decide(_passing(), _waivers(["DMARC-PCT"], expires=date(2025, 3, 31)), TODAY) == 1


def test_a_missed_slo_fails_the_gate_even_when_every_control_passed() -> None:
    run = _passing()
    assert run.load is not None
    slow = SloCheck(limit=50.0, measured=80.0, met=False)
    missed = run.load.model_copy(update={"slo": SloVerdict.of({"smtp_p99_ms": slow})})
    assert decide(run.model_copy(update={"load": missed}), None, TODAY) == 1
