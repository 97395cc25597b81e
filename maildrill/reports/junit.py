"""``junit.xml``: one testcase per control, so CI systems show the verdicts natively.

Each testcase carries the control's ID, severity and reference as properties, and each
warning of a passing control as a ``warning`` property and a line of ``<system-out>``. A failed
control is a ``<failure>``, an error an ``<error>``, a not-applicable control or a waived
failure a ``<skipped>`` (its message gives the waiver), an expired waiver a ``<failure>``.
A load run with an SLO verdict adds one testcase, ``LOAD-SLO``. The suite carries the gate
as a ``gate`` property (0 or 1), each of its causes as a ``gate-cause`` property
("kind: text"), and all of them as the console prints them in its ``<system-out>``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from maildrill.controls.gate import Cause, console_lines, exit_code
from maildrill.controls.waivers import Disposition, Waiver, Waivers
from maildrill.results import ControlResult, RunResults

__all__ = ["write_junit"]

_BODY_LIMIT = 8000  # keep the XML readable in CI viewers; the full evidence is in report.html
# characters XML 1.0 cannot carry at all; a server's banner may hold any of them
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(tree: ET.Element) -> None:
    for el in tree.iter():
        if el.text:
            el.text = _NOT_XML.sub("\ufffd", el.text)
        for key, value in el.attrib.items():
            el.attrib[key] = _NOT_XML.sub("\ufffd", value)


def _evidence_text(control: ControlResult) -> str:
    parts = [control.reason] if control.reason else []
    for ev in control.evidence:
        data = ev.data
        if ev.kind == "transcript" and isinstance(data, list):
            text = "\n".join(str(x) for x in data)
        elif ev.kind == "table" and isinstance(data, list):
            text = "\n".join(
                " | ".join(str(c) for c in row) if isinstance(row, list) else str(row)
                for row in data
            )
        elif isinstance(data, str):
            text = data
        else:
            text = json.dumps(data, indent=1, default=str)
        parts.append(f"--- {ev.label} ({ev.kind})\n{text}")
    body = "\n".join(parts)
    return body if len(body) <= _BODY_LIMIT else body[:_BODY_LIMIT] + "\n[… truncated]"


def _classname(control_id: str) -> str:
    family = control_id.split("[", 1)[0].split("-", 1)[0].lower() or "control"
    return f"maildrill.{family}"


def _waiver_text(w: Waiver) -> str:
    return f"waived until {w.expires.isoformat()} by {w.owner}: {w.justification}"


def write_junit(
    run: RunResults,
    path: Path,
    *,
    waivers: Waivers | None,
    today: date,
    causes: Sequence[Cause],
) -> Path:
    applied = (waivers or Waivers()).apply(run.controls, today)
    suite = ET.Element("testsuite", name=f"maildrill {run.target.name}")
    suite.set("timestamp", run.started.isoformat())
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", run.target.name),
        ("policy", run.target.policy),
        ("maildrill", run.tool.version),
        ("gate", str(exit_code(causes))),
        *(("gate-cause", f"{c.kind.value}: {c.text}") for c in causes),
    ):
        ET.SubElement(props, "property", name=name, value=value)

    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for control, waiver, disp in applied:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_classname(control.id),
            name=f"{control.id} {control.title}",
            time=f"{control.duration_s:.3f}",
        )
        total_time += control.duration_s
        counts["tests"] += 1
        cprops = ET.SubElement(case, "properties")
        for name, value in (
            ("id", control.id),
            ("severity", control.severity.value),
            ("reference", control.reference),
            ("verdict", control.verdict.value),
            ("disposition", disp.value),
        ):
            ET.SubElement(cprops, "property", name=name, value=value)
        if waiver is not None:
            ET.SubElement(cprops, "property", name="waiver", value=_waiver_text(waiver))
        for warning in control.warnings:
            ET.SubElement(cprops, "property", name="warning", value=warning)
        body = _evidence_text(control)
        if disp is Disposition.EXPIRED:
            el = ET.SubElement(
                case,
                "failure",
                type="waiver-expired",
                message=f"waiver expired on {waiver.expires.isoformat() if waiver else '?'} "
                f"(verdict {control.verdict.value}); renew or remove it",
            )
            el.text = body
            counts["failures"] += 1
        elif disp is Disposition.FAILED:
            tag = "error" if control.verdict.value == "error" else "failure"
            el = ET.SubElement(
                case,
                tag,
                type=control.verdict.value,
                message=f"[{control.severity.value}] {control.reason or control.verdict.value}",
            )
            el.text = body
            counts["errors" if tag == "error" else "failures"] += 1
        elif disp is Disposition.WAIVED and waiver is not None:
            ET.SubElement(case, "skipped", message=_waiver_text(waiver)).text = body
            counts["skipped"] += 1
        elif disp is Disposition.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=control.reason or "not applicable")
            counts["skipped"] += 1
        if control.warnings:  # after any failure/skipped element, as JUnit's schema orders
            ET.SubElement(case, "system-out").text = "\n".join(
                f"WARNING: {w}" for w in control.warnings
            )

    if run.load is not None and run.load.slo is not None:
        counts["tests"] += 1
        case = ET.SubElement(
            suite, "testcase", classname="maildrill.load", name=f"LOAD-SLO {run.load.scenario}"
        )
        cprops = ET.SubElement(case, "properties")
        ET.SubElement(cprops, "property", name="id", value="LOAD-SLO")
        ET.SubElement(cprops, "property", name="severity", value="high")
        slo = run.load.slo
        if not slo.met:
            el = ET.SubElement(case, "failure", type="slo", message="the load run missed its SLO")
            # the verdict, then each check by name, as a CI log shows it
            checks = {k: c.model_dump(exclude_none=True) for k, c in slo.checks.items()}
            el.text = json.dumps({"met": slo.met, **checks}, indent=1, default=str)
            counts["failures"] += 1

    # after the testcases, as JUnit's schema orders a suite's elements
    ET.SubElement(suite, "system-out").text = "\n".join(console_lines(causes))
    for key, n in counts.items():
        suite.set(key, str(n))
    suite.set("time", f"{total_time:.3f}")
    root = ET.Element("testsuites", name="maildrill")
    for key, n in counts.items():
        root.set(key, str(n))
    root.set("time", f"{total_time:.3f}")
    root.append(suite)
    _xml_safe(root)
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
    return path
