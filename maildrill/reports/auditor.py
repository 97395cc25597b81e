"""The auditor's report (``report.html``): who ran what against which target, and every
control's verdict with its evidence and any waiver."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from maildrill.controls.gate import Cause, blocked_by, exit_code
from maildrill.controls.waivers import Disposition, Waiver, Waivers
from maildrill.results import ControlResult, EvidenceItem, RunResults, Severity, Verdict

__all__ = ["ControlRow", "auditor_context", "evidence_view", "root_causes"]

_SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}
_DISPOSITION_ORDER = {
    Disposition.EXPIRED: 0,
    Disposition.FAILED: 0,
    Disposition.WAIVED: 1,
    Disposition.PASSED: 2,
    Disposition.NOT_APPLICABLE: 3,
}


def _anchor(control_id: str) -> str:
    return "c-" + "".join(ch if ch.isalnum() else "-" for ch in control_id)


@dataclass(frozen=True)
class RootCause:
    """One finding that kept other controls from being checked."""

    owner: str  # the control whose subject is the cause, e.g. GREET-SMTP[smtp]
    verdict: str | None  # the owner's own verdict in this run, if it ran
    reason: str
    blocked: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return _anchor(self.owner)


def root_causes(controls: list[ControlResult]) -> list[RootCause]:
    """The errors one finding caused, grouped under it, most blocking first::

    [c.owner for c in root_causes(run.controls)]    # ["GREET-SMTP[smtp]"]
    """
    groups: dict[str, list[ControlResult]] = {}
    for c in controls:
        found = blocked_by(c.reason) if c.verdict is Verdict.ERROR else None
        if found:
            groups.setdefault(found[0], []).append(c)
    verdicts = {c.id: c.verdict.value for c in controls}
    causes = [
        RootCause(
            owner=owner,
            verdict=verdicts.get(owner),
            reason=(blocked[0].reason.splitlines() or [""])[0].partition(": ")[2],
            blocked=tuple(c.id for c in blocked),
        )
        for owner, blocked in groups.items()
    ]
    return sorted(causes, key=lambda c: (-len(c.blocked), c.owner))


@dataclass(frozen=True)
class ControlRow:
    control: ControlResult
    waiver: Waiver | None
    disposition: Disposition

    @property
    def anchor(self) -> str:
        return _anchor(self.control.id)


def evidence_view(item: EvidenceItem) -> dict[str, Any]:
    """Shape one evidence item for the template; data that does not fit its kind is shown
    as JSON rather than dropped."""
    data = item.data
    kind = item.kind
    if kind == "transcript":
        lines = data.splitlines() if isinstance(data, str) else data
        if isinstance(lines, list):
            return {"kind": "transcript", "lines": [_transcript_line(str(x)) for x in lines]}
    elif kind == "table":
        if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
            rows = [[_cell(c) for c in r] for r in data]
            return {"kind": "table", "header": rows[0], "rows": rows[1:]}
    elif kind == "dns":
        if isinstance(data, str):
            return {"kind": "dns", "records": data.splitlines()}
        if isinstance(data, list):
            return {"kind": "dns", "records": [_cell(r) for r in data]}
        if isinstance(data, dict):
            return {
                "kind": "table",
                "header": ["name / type", "answers"],
                "rows": [[str(k), _cell(v)] for k, v in data.items()],
            }
    elif kind == "text":
        return {"kind": "text", "text": data if isinstance(data, str) else str(data)}
    return {"kind": "json", "value": data}


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def _transcript_line(line: str) -> tuple[str, str]:
    """(direction class, text): C: client, S: server, anything else a note."""
    if line.startswith("C:"):
        return ("c", line)
    if line.startswith("S:"):
        return ("s", line)
    return ("n", line)


def auditor_context(
    run: RunResults,
    *,
    results_sha256: str,
    waivers: Waivers | None,
    today: date,
    causes: Sequence[Cause],
) -> dict[str, Any]:
    applied = (waivers or Waivers()).apply(run.controls, today)
    rows = sorted(
        (ControlRow(c, w, d) for c, w, d in applied),
        # what fails the gate first, so an auditor of 200 controls starts with what matters
        key=lambda r: (
            _DISPOSITION_ORDER[r.disposition],
            _SEVERITY_ORDER[r.control.severity],
            r.control.id,
        ),
    )
    summary = []
    for sev in Severity:
        mine = [r for r in rows if r.control.severity is sev]
        summary.append(
            {
                "severity": sev.value,
                "total": len(mine),
                **{v.value: sum(r.control.verdict is v for r in mine) for v in Verdict},
                "waived": sum(r.disposition is Disposition.WAIVED for r in mine),
                "warnings": sum(bool(r.control.warnings) for r in mine),
                "failing": sum(
                    r.disposition in (Disposition.FAILED, Disposition.EXPIRED) for r in mine
                ),
            }
        )
    waiver_rows = []
    if waivers is not None:
        unused = waivers.unused(run.controls)
        for w in waivers.waiver:
            state = "expired" if w.expired(today) else "unused" if w in unused else "active"
            waiver_rows.append({"waiver": w, "state": state})
    return {
        "run": run,
        "command": shlex.join(run.command),
        "results_sha256": results_sha256,
        "rows": rows,
        "summary": summary,
        "root_causes": root_causes(run.controls),
        "waivers": waiver_rows,
        "waivers_given": waivers is not None,
        "today": today.isoformat(),
        "gate": exit_code(causes),
        "causes": causes,
        "evidence_view": evidence_view,
    }
