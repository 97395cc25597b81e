"""The CI gate: one pure decision from a run's results, the waivers and the date.

:func:`causes` lists why the gate fails, each a typed :class:`Cause`; :func:`decide` is 1
when there is any, else 0, so the exit code and the reasons given for it cannot disagree.
A cause is one of :class:`CauseKind`: a control that failed or errored and no active waiver
covers (``error`` fails too: the gate does not pass what it could not see), an expired
waiver (whether or not its control still fails, so that it is renewed or removed rather
than forgotten), a missed SLO check, a lost load worker, a load run that ended before its
plan, an interrupted run, a run that checked nothing. The commands print the causes, the
renderers show them; neither decides::

    found = causes(read_results(Path("out/results.json")), load_waivers("waivers.toml"),
                   today=date(2025, 6, 1))
    code = exit_code(found)          # == decide(...)
    for line in console_lines(found):
        print(line, file=sys.stderr)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from maildrill.controls.waivers import Disposition, Waivers
from maildrill.results import ControlResult, LoadResult, RunResults, Verdict

__all__ = ["Cause", "CauseKind", "blocked_by", "causes", "console_lines", "decide", "exit_code"]

# the reason of a check an earlier finding kept from running (maildrill.errors.Blocked, as
# preflight's Blocker words it): "blocked by GREET-SMTP[smtp]: no greeting within 10 s"
_BLOCKED = re.compile(r"blocked by (?P<owner>[A-Z0-9][A-Z0-9-]*(?:\[[^\]]*\])?): (?P<why>.*)")


class CauseKind(StrEnum):
    """What kind of reason fails the gate; the order is the order causes are listed in."""

    INTERRUPTED = "interrupted"  # stopped by a signal: partial results cannot pass
    NOTHING_CHECKED = "nothing-checked"  # no control and no load: nothing to pass
    FAILED = "fail"  # a control saw the server do wrong
    ERROR = "error"  # a control could not find out
    WAIVER_EXPIRED = "waiver-expired"
    SLO_MISSED = "slo-missed"  # one figure of the load run over its limit
    WORKER_LOST = "worker-lost"  # a distributed run's worker vanished: less load than asked
    LOAD_INCOMPLETE = "load-incomplete"  # Locust stopped before the plan was done


@dataclass(frozen=True)
class Cause:
    """One reason the gate fails: its kind, one line saying it, and what it is about (a
    control ID, a waiver's control, an SLO figure, a worker), for the reports to link."""

    kind: CauseKind
    text: str
    subject: str = ""


def causes(run: RunResults, waivers: Waivers | None, today: date) -> list[Cause]:
    """Every reason ``run`` fails the gate, after ``waivers`` as of ``today``; none: it passes."""
    found = [*_run_causes(run), *_control_causes(run.controls, waivers, today)]
    found += _waiver_causes(waivers, today)
    if run.load is not None:
        found += _load_causes(run.load, interrupted=run.interrupted)
    order = list(CauseKind)
    return sorted(found, key=lambda c: order.index(c.kind))  # stable: each kind's own order


def exit_code(found: Sequence[Cause]) -> int:
    """The gate's exit code for these causes: 0 pass, 1 fail."""
    return 1 if found else 0


def decide(run: RunResults, waivers: Waivers | None, today: date) -> int:
    """The gate's exit code for ``run``: 0 pass, 1 fail (:func:`causes` says why)."""
    return exit_code(causes(run, waivers, today))


def console_lines(found: Sequence[Cause]) -> list[str]:
    """The gate as the console shows it: ``gate: pass``, or ``gate: FAIL`` and a line per cause."""
    if not found:
        return ["gate: pass"]
    width = max(len(k) for k in CauseKind) + 1
    return ["gate: FAIL", *(f"  {c.kind.value:<{width}}{c.text}" for c in found)]


def blocked_by(reason: str) -> tuple[str, str] | None:
    """(owner, why) of an error's reason when another control's finding blocked it::

    blocked_by("blocked by GREET-SMTP[smtp]: no greeting")  # ("GREET-SMTP[smtp]", "no greeting")
    """
    found = _BLOCKED.match((reason.splitlines() or [""])[0])
    return (found["owner"], found["why"]) if found else None


def _run_causes(run: RunResults) -> Iterator[Cause]:
    if run.interrupted:
        yield Cause(CauseKind.INTERRUPTED, "the run was interrupted; its results are partial")
    if not run.controls and run.load is None:
        yield Cause(CauseKind.NOTHING_CHECKED, "no control was checked and no load was run")


def _control_causes(
    controls: list[ControlResult], waivers: Waivers | None, today: date
) -> Iterator[Cause]:
    """A failed or errored control no active waiver covers; the errors one finding caused
    ("blocked by GREET-SMTP[smtp]: …") are one cause naming it, not one each."""
    blocked: dict[tuple[str, str], list[str]] = {}
    for control, _, disposition in (waivers or Waivers()).apply(controls, today):
        if control.verdict not in (Verdict.FAIL, Verdict.ERROR):
            continue
        if disposition is Disposition.WAIVED:
            continue
        cause = blocked_by(control.reason) if control.verdict is Verdict.ERROR else None
        if cause is not None:
            blocked.setdefault(cause, []).append(control.id)
            continue
        kind = CauseKind.FAILED if control.verdict is Verdict.FAIL else CauseKind.ERROR
        first = (control.reason.splitlines() or [""])[0]
        said = f": {first}" if first else ""
        yield Cause(kind, f"{control.id} [{control.severity.value}]{said}", control.id)
    for (owner, why), ids in blocked.items():
        n = f"{len(ids)} control{'s' if len(ids) != 1 else ''}"
        yield Cause(CauseKind.ERROR, f"{n} blocked by {owner}: {why} ({', '.join(ids)})", owner)


def _waiver_causes(waivers: Waivers | None, today: date) -> Iterator[Cause]:
    for w in (waivers or Waivers()).expired(today):
        yield Cause(
            CauseKind.WAIVER_EXPIRED,
            f"{w.control}: waiver expired on {w.expires.isoformat()} (owner {w.owner}); "
            "renew or remove it",
            w.control,
        )


def _load_causes(load: LoadResult, *, interrupted: bool) -> Iterator[Cause]:
    slo = load.slo
    # a lost worker is said below, with who and when
    missed = [] if slo is None else [n for n in slo.missed() if n != "workers_lost"]
    for name in missed:
        assert slo is not None
        check = slo.checks[name]
        note = f" ({check.note})" if check.note else ""
        figures = f": measured {check.measured:g}, limit {check.limit:g}"
        yield Cause(CauseKind.SLO_MISSED, f"{name}{figures}{note}", name)
    for w in load.workers_lost:
        pid = f" (pid {w.pid})" if w.pid is not None else ""
        yield Cause(
            CauseKind.WORKER_LOST,
            f"worker #{w.index} {w.worker}{pid} lost at {w.lost_s:g} s: {w.reason}",
            w.worker,
        )
    if slo is not None and not slo.met and not missed and not load.workers_lost:
        yield Cause(CauseKind.SLO_MISSED, "the load run missed its SLO")
    if load.interrupted and not interrupted:  # no signal: Locust itself stopped early
        yield Cause(
            CauseKind.LOAD_INCOMPLETE,
            "the load run ended before its plan was done; its figures are partial",
        )
