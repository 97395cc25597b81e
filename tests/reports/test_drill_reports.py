"""Must show: ``maildrill drill`` against the embedded target writes report.html,
capacity.html, junit.xml and a results.json valid against the committed schema, and the
reports open cleanly in Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from maildrill.results import SCHEMA_PATH

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("drill")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "maildrill", "drill"),
            *("--out", str(out), "--duration", "2", "--users", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 1 is a verdict (a control failed), not a harness failure: the gate is checked below
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.returncode


@pytest.fixture(scope="module")
def drill_out(drill: tuple[Path, int]) -> Path:
    return drill[0]


def test_drill_writes_every_report(drill_out: Path) -> None:
    for name in ("results.json", "report.html", "capacity.html", "junit.xml"):
        assert (drill_out / name).stat().st_size > 0, name
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    data = json.loads((drill_out / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    assert data["load"] is not None and data["controls"]
    root = ET.parse(drill_out / "junit.xml").getroot()
    cases = [c for c in root.iter("testcase") if c.get("classname") != "maildrill.load"]
    assert len(cases) == len(data["controls"])  # one per control (plus LOAD-SLO if any)
    capacity = (drill_out / "capacity.html").read_text(encoding="utf-8")
    assert 'id="key-metrics"' in capacity and "SMTP response latency P99" in capacity


def test_drill_exit_code_is_the_gate_of_its_reports(drill: tuple[Path, int]) -> None:
    out, code = drill
    root = ET.parse(out / "junit.xml").getroot()
    failing = int(root.get("failures", "0")) + int(root.get("errors", "0"))
    assert code == (1 if failing else 0)
    gate = "Gate: <strong>PASS</strong>" if code == 0 else "Gate: <strong>FAIL</strong>"
    assert gate in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.chromium
def test_drill_reports_open_cleanly_in_chromium(drill_out: Path, tmp_path: Path) -> None:
    from tests.reports.chromium import Chromium, find_chromium
    from tests.reports.test_chromium import require_chromium

    binary = find_chromium() or require_chromium()
    with Chromium(binary, tmp_path / "profile") as browser:
        for name in ("report.html", "capacity.html"):
            browser.load((drill_out / name).as_uri())
            assert browser.console_errors() == [], name
            assert all(u.startswith(("file:", "data:")) for u in browser.requested_urls())
            assert browser.evaluate("!!document.getElementById('run')")
            browser.screenshot(drill_out / f"{name}.png")
