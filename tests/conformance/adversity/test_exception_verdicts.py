"""The property of issue 10: every exception a probe can meet ends its control ``error``
(the check could not find out), never ``fail`` — only a failed assertion (``expect``) is a
finding about the server.

Proven twice: on the plugin's decision itself for every exception of the list with assorted
messages, and end to end through a real pytest run of checks that raise them. (Not with
hypothesis: its pytest plugin trips this suite's filterwarnings = error on a deprecation
inside mypy_extensions; the space here is a finite list anyway.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maildrill.controls.pytest_plugin import _verdict
from maildrill.results import Verdict
from tests.conformance.adversity.exceptions import MAKERS
from tests.conformance.suite import ROOT, SUITES


def _raise(exc: BaseException) -> None:
    raise exc


def _decide(exc: BaseException) -> tuple[Verdict, str]:
    call = pytest.CallInfo.from_call(lambda: _raise(exc), when="call")
    report = pytest.TestReport("probe", ("probe.py", 0, "probe"), {}, "failed", None, "call")
    return _verdict(report, call)


MESSAGES = ["", "no reply within 10 s", "certificate rejected: Hostname mismatch", "\x00\xff" * 200]


@pytest.mark.parametrize("message", MESSAGES, ids=["empty", "timeout", "tls", "garbage"])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_any_probe_exception_is_an_error(name: str, message: str) -> None:
    verdict, reason = _decide(MAKERS[name](message))
    assert verdict is Verdict.ERROR, (name, reason)
    assert reason


def test_only_an_assertion_is_a_failure() -> None:
    assert _decide(AssertionError("EHLO answered 502"))[0] is Verdict.FAIL


CHECKS = """
import pytest
from maildrill.controls.api import control, expect
from tests.conformance.adversity.exceptions import MAKERS

NAMES = sorted(MAKERS)


@control("PROBE", "raises what a probe can meet", severity="high", reference="issue 10")
@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_probe(target, name):
    raise MAKERS[name](f"met {name} on the way")


@control("FINDING", "the server was seen doing the wrong thing", severity="high",
         reference="issue 10")
def test_finding(target):
    expect(False, "EHLO answered 502")
"""


def test_through_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_probes.py").write_text(CHECKS, encoding="utf-8")
    target = tmp_path / "target.toml"
    # nothing listens there; no check here opens it
    target.write_text(
        'name = "t"\ndomain = "example.test"\n[endpoints.smtp]\nurl = "smtp://127.0.0.1:9"\n',
        encoding="utf-8",
    )
    results = tmp_path / "controls.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_probes.py"),
         "-c", str(SUITES / "pytest.ini"), "--rootdir", str(tmp_path),
         "--target", str(target), "--results", str(results), "-q"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert results.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    verdicts = {c["id"]: c["verdict"] for c in json.loads(results.read_text())["controls"]}
    assert verdicts.pop("FINDING") == "fail", proc.stdout[-2000:]
    assert verdicts == {f"PROBE[{name}]": "error" for name in MAKERS}, verdicts
