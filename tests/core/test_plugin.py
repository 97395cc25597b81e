"""The plugin turns check outcomes into verdicts, with evidence, both ways."""

from __future__ import annotations

import json

import pytest

CHECKS = """
import pytest

from maildrill.controls.api import control, expect, not_applicable
from maildrill.errors import NotApplicable, TargetUnreachable
from maildrill.probes.inbound import require_mailbox
from maildrill.target import Role

@pytest.fixture
def needs_what_is_not_there():
    raise NotApplicable("nothing to stand on")

@control("T-PASS", "passes", severity="low", reference="RFC 0 §1")
def test_pass(target, evidence):
    evidence.text("note", "all good")

@control("T-FAIL", "fails", severity="high", reference="S9")
def test_fail(target, evidence):
    lines = ["S: 554 go away"]
    evidence.transcript("session", lines)
    lines.append("C: QUIT")  # recorded after the call: the live list is kept
    expect(False, "greeting was 554")

@control("T-NA", "not applicable", severity="info", reference="S5")
def test_na(target):
    not_applicable("out of reach on one machine")

@control("T-NA-PROBE", "a probe finds it does not apply", severity="high", reference="S11")
def test_na_from_a_probe(target):
    require_mailbox(target)  # no imap endpoint: the probe raises NotApplicable

@control("T-NA-FIXTURE", "a fixture finds it does not apply", severity="high", reference="-")
def test_na_from_a_fixture(target, needs_what_is_not_there):
    pass

@control("T-UNREACH", "target misbehaves", severity="critical", reference="S9")
def test_unreachable(target):
    raise TargetUnreachable("mx1 refused")

@control("T-BUG", "check has a bug", severity="medium", reference="-")
def test_bug(target):
    {}["missing"]

@control("T-ROLE", "per role", severity="high", reference="S9", roles=[Role.SMTP, Role.POP3])
def test_roles(target, endpoint):
    expect(endpoint.port == 2525, "port")

def test_not_a_control():
    pass
"""

TARGET = 'name = "t"\ndomain = "d.test"\n[endpoints.smtp]\nurl = "smtp://127.0.0.1:2525"\n'


def test_verdicts_and_evidence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    target = pytester.makefile(".toml", target=TARGET)
    out = pytester.path / "controls.json"
    result = pytester.runpytest(
        "--target", str(target), "--results", str(out), "-p", "no:cacheprovider"
    )
    assert result.ret == 1
    controls = {c["id"]: c for c in json.loads(out.read_text())["controls"]}
    verdicts = {k: v["verdict"] for k, v in controls.items()}
    assert verdicts == {
        "T-PASS": "pass",
        "T-FAIL": "fail",
        "T-NA": "not-applicable",
        "T-NA-PROBE": "not-applicable",
        "T-NA-FIXTURE": "not-applicable",
        "T-UNREACH": "error",  # could not find out: not the server seen doing wrong
        "T-BUG": "error",
        "T-ROLE[smtp]": "pass",
        "T-ROLE[pop3]": "not-applicable",
    }
    assert controls["T-FAIL"]["reason"] == "greeting was 554"
    assert controls["T-FAIL"]["evidence"][0]["data"] == ["S: 554 go away", "C: QUIT"]
    assert controls["T-FAIL"]["severity"] == "high" and controls["T-FAIL"]["reference"] == "S9"
    assert controls["T-NA"]["reason"] == "out of reach on one machine"
    assert controls["T-NA-PROBE"]["reason"].startswith("the target configures no imap")
    assert controls["T-NA-FIXTURE"]["reason"] == "nothing to stand on"
    result.assert_outcomes(passed=3, failed=3, skipped=4)  # not-applicable: skipped, not error
    assert "mx1 refused" in controls["T-UNREACH"]["reason"]
    assert "KeyError" in controls["T-BUG"]["reason"]
    assert controls["T-ROLE[pop3]"]["reason"] == "the target configures no pop3 endpoint"


def test_no_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*conformance checks need --target FILE*"])


def test_bad_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=CHECKS)
    target = pytester.makefile(".toml", target=TARGET.replace("url", "ur1"))
    result = pytester.runpytest("--target", str(target), "-p", "no:cacheprovider")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*endpoints.smtp.ur1: unknown field*"])


def _selected(pytester: pytest.Pytester, *selection: str) -> tuple[int, list[str]]:
    pytester.makepyfile(test_checks=CHECKS)
    target = pytester.makefile(".toml", target=TARGET)
    out = pytester.path / "controls.json"
    result = pytester.runpytest(
        "--target", str(target), "--results", str(out), "-p", "no:cacheprovider", *selection
    )
    ids = [c["id"] for c in json.loads(out.read_text())["controls"]] if out.exists() else []
    return result.ret, ids


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("T-FAIL", ["T-FAIL"]),  # the test is test_fail: before, no test name matched
        ("T-ROLE[pop3]", ["T-ROLE[pop3]"]),
        ("T-ROLE", ["T-ROLE[smtp]", "T-ROLE[pop3]"]),
        # as pytest's -k: a part of the ID (T-NA-PROBE too), any case, any expression
        ("t-pass or T-NA", ["T-PASS", "T-NA", "T-NA-PROBE", "T-NA-FIXTURE"]),
        ("not T-ROLE and not T-BUG and not T-UNREACH and not T-NA-", ["T-PASS", "T-FAIL", "T-NA"]),
    ],
)
def test_k_matches_the_control_ids_the_report_shows(
    pytester: pytest.Pytester, expression: str, ids: list[str]
) -> None:
    _, selected = _selected(pytester, "-k", expression)
    assert selected == ids


@pytest.mark.parametrize(
    ("patterns", "ids"),
    [
        (["T-ROLE[pop3]"], ["T-ROLE[pop3]"]),  # brackets are the ID's, not a glob's set
        (["T-ROLE"], ["T-ROLE[smtp]", "T-ROLE[pop3]"]),  # a base ID: every subject
        (["T-NA"], ["T-NA"]),  # the whole ID, not a part of it as -k
        (["T-*A*"], ["T-PASS", "T-FAIL", "T-NA", "T-NA-PROBE", "T-NA-FIXTURE", "T-UNREACH"]),
        (["t-pass", "T-ROLE[*p]"], ["T-PASS", "T-ROLE[smtp]"]),  # repeatable; any case
        (["T-?A"], ["T-NA"]),
    ],
)
def test_control_option_selects_by_id_with_globs(
    pytester: pytest.Pytester, patterns: list[str], ids: list[str]
) -> None:
    code, selected = _selected(pytester, *(arg for p in patterns for arg in ("--control", p)))
    assert selected == ids
    assert code in (0, 1)


def test_control_option_matching_nothing_selects_nothing(pytester: pytest.Pytester) -> None:
    code, selected = _selected(pytester, "--control", "NOPE-*")
    assert code == pytest.ExitCode.NO_TESTS_COLLECTED and selected == []
