"""junit.xml: one testcase per control, with its ID and severity; failures and errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from maildrill.results import read_results


def _cases(rendered: Path) -> dict[str, ET.Element]:
    root = ET.parse(rendered / "junit.xml").getroot()
    assert root.tag == "testsuites"
    cases = {}
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        cases[str(props["id"])] = case
    return cases


def test_one_testcase_per_control_with_id_and_severity(rendered: Path, results_file: Path) -> None:
    run = read_results(results_file)
    cases = _cases(rendered)
    assert set(cases) == {c.id for c in run.controls} | {"LOAD-SLO"}
    for control in run.controls:
        props = {p.get("name"): p.get("value") for p in cases[control.id].iter("property")}
        assert props["severity"] == control.severity.value
        assert props["reference"] == control.reference


def test_fail_is_a_failure_error_an_error_na_skipped(rendered: Path) -> None:
    cases = _cases(rendered)
    tls = cases["TLS-VER[smtp]"].find("failure")
    assert tls is not None and "TLS 1.1 accepted" in (tls.get("message") or "")
    assert "TLS 1.1 | yes" in (tls.text or "")  # the scan table travels with the failure
    assert cases["DKIM-KEY[sel1]"].find("error") is not None
    assert cases["WEB-HSTS[webmail]"].find("skipped") is not None
    passed = cases["TLS-VER[imaps]"]
    assert [child.tag for child in passed] == ["properties"]


def test_suite_counts_add_up(rendered: Path) -> None:
    root = ET.parse(rendered / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(len(list(suite.iter("testcase"))))
    assert suite.get("failures") == "3"  # TLS-VER[smtp], SMTP-LONGCMD, DMARC-PCT
    assert suite.get("errors") == "1"
    assert suite.get("skipped") == "1"


def test_a_warning_travels_with_its_passing_testcase(rendered: Path) -> None:
    case = _cases(rendered)["CERT-EXPIRY[smtp]"]
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == "pass" and "expires within 30 days" in str(props["warning"])
    assert case.find("failure") is None and case.find("skipped") is None
    out = case.find("system-out")
    assert out is not None and (out.text or "").startswith("WARNING: expires within 30 days")
