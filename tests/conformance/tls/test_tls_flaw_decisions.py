"""The five TLS-flaw controls both ways, at the level of the scan result they read.

No server this project can start has these flaws: Debian's OpenSSL 3 (and Python's ssl on
it) offers no TLS compression, always supports RFC 5746 secure renegotiation, and has long
been fixed for Heartbleed, CCS injection and ROBOT. So each control is given sslyze's
result for a flawed server and for a sound one, as sslyze reports them, and must fail the
first (naming the node) and pass the second. The sound side is also proven end to end: the
embedded target and the good stack pass all five."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from sslyze.plugins.robot.implementation import RobotScanResultEnum
from sslyze.plugins.scan_commands import ScanCommand

from maildrill.controls.api import Evidence
from tests.conformance.suite import check_module

flaws = check_module("tls/test_vulnerabilities.py")

NODE = SimpleNamespace(label="192.0.2.7:465")


class _Scan:
    """An EndpointScan stand-in holding one node's result for one scan command."""

    def __init__(self, command: ScanCommand, result: Any) -> None:
        self.command, self.result = command, result

    def each(self, command: ScanCommand) -> list[tuple[Any, Any]]:
        assert command is self.command, command
        return [(NODE, self.result)]


def _robot(value: RobotScanResultEnum) -> Any:
    return SimpleNamespace(robot_result=value)


CASES: dict[str, tuple[Callable[..., None], ScanCommand, Any, Any]] = {
    "TLS-COMPRESSION": (
        flaws.test_compression,
        ScanCommand.TLS_COMPRESSION,
        SimpleNamespace(supports_compression=True),
        SimpleNamespace(supports_compression=False),
    ),
    "TLS-RENEG": (
        flaws.test_secure_renegotiation,
        ScanCommand.SESSION_RENEGOTIATION,
        SimpleNamespace(supports_secure_renegotiation=False, client_renegotiations_success_count=0),
        SimpleNamespace(supports_secure_renegotiation=True, client_renegotiations_success_count=0),
    ),
    "TLS-HEARTBLEED": (
        flaws.test_heartbleed,
        ScanCommand.HEARTBLEED,
        SimpleNamespace(is_vulnerable_to_heartbleed=True),
        SimpleNamespace(is_vulnerable_to_heartbleed=False),
    ),
    "TLS-ROBOT": (
        flaws.test_robot,
        ScanCommand.ROBOT,
        _robot(RobotScanResultEnum.VULNERABLE_STRONG_ORACLE),
        _robot(RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE),
    ),
    "TLS-CCS": (
        flaws.test_ccs_injection,
        ScanCommand.OPENSSL_CCS_INJECTION,
        SimpleNamespace(is_vulnerable_to_ccs_injection=True),
        SimpleNamespace(is_vulnerable_to_ccs_injection=False),
    ),
}


@pytest.fixture(autouse=True)
def _tls12_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    # TLS-RENEG applies only where something older than TLS 1.3 is accepted
    monkeypatch.setattr(flaws, "_pre_tls13", lambda scan: True)


@pytest.mark.parametrize("control", sorted(CASES))
def test_a_flawed_result_fails_and_a_sound_one_passes(control: str) -> None:
    check, command, flawed, sound = CASES[control]
    evidence = Evidence()
    check(None, None, _Scan(command, sound), evidence)  # passes: nothing raised
    with pytest.raises(pytest.fail.Exception) as failed:
        check(None, None, _Scan(command, flawed), Evidence())
    assert NODE.label in str(failed.value)
    assert evidence.items(), "the evidence table is kept either way"


def test_an_inconclusive_robot_probe_is_not_a_pass() -> None:
    inconclusive = _robot(RobotScanResultEnum.UNKNOWN_INCONSISTENT_RESULTS)
    with pytest.raises(pytest.fail.Exception, match="inconclusive"):
        flaws.test_robot(None, None, _Scan(ScanCommand.ROBOT, inconclusive), Evidence())
