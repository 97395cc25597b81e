"""The gate as a pure decision (maildrill.controls.gate.decide), without rendering anything."""

from __future__ import annotations

from datetime import date

import pytest

from maildrill.controls.gate import CauseKind, causes, decide
from maildrill.controls.waivers import Waiver, Waivers
from maildrill.results import (
    ControlResult,
    RunResults,
    Severity,
    SloCheck,
    SloVerdict,
    Verdict,
    WorkerLoss,
)
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


# -- the causes: why the gate fails, typed, and the only thing decide() reads ------------


def _kinds(run: RunResults, waivers: Waivers | None = None) -> list[tuple[str, str]]:
    return [(c.kind.value, c.text) for c in causes(run, waivers, TODAY)]


def test_a_clean_run_has_no_cause() -> None:
    assert causes(_passing(), None, TODAY) == []


def test_each_failed_control_and_each_error_is_a_cause() -> None:
    found = causes(sample.run(), None, TODAY)
    assert [(c.kind, c.subject) for c in found] == [
        (CauseKind.FAILED, "TLS-VER[smtp]"),
        (CauseKind.FAILED, "SMTP-LONGCMD[smtp]"),
        (CauseKind.FAILED, "DMARC-PCT[example.test]"),
        (CauseKind.ERROR, "DKIM-KEY[sel1]"),
    ]
    assert found[0].text.startswith("TLS-VER[smtp] [high]: ")
    assert "\n" not in "".join(c.text for c in found)


def test_errors_blocked_by_one_finding_are_one_cause_naming_it() -> None:
    run = _passing()
    blocked = [
        ControlResult(
            id=f"CAP-{n}[smtp]",
            title="t",
            severity=Severity.HIGH,
            reference="S9",
            verdict=Verdict.ERROR,
            reason="blocked by GREET-SMTP[smtp]: no greeting in 10 s",
        )
        for n in ("A", "B")
    ]
    found = causes(run.model_copy(update={"controls": [*run.controls, *blocked]}), None, TODAY)
    assert [(c.kind, c.subject, c.text) for c in found] == [
        (
            CauseKind.ERROR,
            "GREET-SMTP[smtp]",
            "2 controls blocked by GREET-SMTP[smtp]: no greeting in 10 s "
            "(CAP-A[smtp], CAP-B[smtp])",
        )
    ]


def test_waived_failures_are_no_cause_and_an_expired_waiver_is_one() -> None:
    assert causes(sample.run(), _waivers(FAILURES), TODAY) == []
    expired = _waivers(["DMARC-PCT"], expires=date(2025, 3, 31))
    assert _kinds(_passing(), expired) == [
        (
            "waiver-expired",
            "DMARC-PCT: waiver expired on 2025-03-31 (owner ops@example.test); renew or remove it",
        )
    ]
    # a failure whose waiver has expired fails in its own right too
    assert [k for k, _ in _kinds(sample.run(), _waivers(FAILURES, expires=date(2025, 1, 1)))] == [
        "fail", "fail", "fail", "error", *["waiver-expired"] * 4,
    ]  # fmt: skip


def test_each_missed_slo_check_and_each_lost_worker_is_a_cause() -> None:
    run = _passing()
    assert run.load is not None
    slo = SloVerdict.of(
        {
            "smtp_p99_ms": SloCheck(limit=1000.0, measured=1250.5, met=False),
            "error_rate_pct": SloCheck(limit=1.0, measured=0.2, met=True),
            "workers_lost": SloCheck(limit=0, measured=1, met=False),
        }
    )
    lost = WorkerLoss(worker="box_1a2b", index=1, pid=4242, lost_s=5.5, reason="missed heartbeats")
    load = run.load.model_copy(update={"slo": slo, "workers_lost": [lost]})
    assert _kinds(run.model_copy(update={"load": load}), None) == [
        ("slo-missed", "smtp_p99_ms: measured 1250.5, limit 1000"),
        ("worker-lost", "worker #1 box_1a2b (pid 4242) lost at 5.5 s: missed heartbeats"),
    ]


def test_a_missed_slo_without_its_figures_is_still_a_cause() -> None:
    run = _passing()
    assert run.load is not None
    load = run.load.model_copy(update={"slo": SloVerdict(met=False)})
    assert _kinds(run.model_copy(update={"load": load}), None) == [
        ("slo-missed", "the load run missed its SLO")
    ]


def test_a_partial_run_and_an_empty_one_cannot_pass() -> None:
    run = _passing()
    assert run.load is not None
    early = run.load.model_copy(update={"interrupted": True})
    assert _kinds(run.model_copy(update={"load": early}), None) == [
        ("load-incomplete", "the load run ended before its plan was done; its figures are partial")
    ]
    assert _kinds(run.model_copy(update={"interrupted": True}), None) == [
        ("interrupted", "the run was interrupted; its results are partial")
    ]
    assert _kinds(run.model_copy(update={"controls": [], "load": None}), None) == [
        ("nothing-checked", "no control was checked and no load was run")
    ]


@pytest.mark.parametrize("waived", [[], FAILURES, FAILURES[1:]])
@pytest.mark.parametrize("expires", [date(2025, 3, 31), date(2025, 12, 31)])
@pytest.mark.parametrize("which", ["sample", "passing", "no-load", "empty"])
def test_decide_is_derived_from_the_causes(waived: list[str], expires: date, which: str) -> None:
    run = {
        "sample": sample.run(),
        "passing": _passing(),
        "no-load": sample.run(with_load=False),
        "empty": _passing().model_copy(update={"controls": [], "load": None}),
    }[which]
    waivers = _waivers(waived, expires) if waived else None
    assert decide(run, waivers, TODAY) == (1 if causes(run, waivers, TODAY) else 0)
