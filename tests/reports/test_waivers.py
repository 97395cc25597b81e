"""Waivers: valid, expired, malformed, and their effect on the gate (exit code)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from maildrill.controls.waivers import Disposition, load_waivers
from maildrill.errors import ConfigError
from maildrill.reports import render_all
from tests.reports import sample

TODAY = date(2025, 4, 1)
EXAMPLE = Path(__file__).parents[2] / "targets" / "waivers.example.toml"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "waivers.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _waiver(control: str, expires: str = "2025-12-31") -> str:
    return (
        f'[[waiver]]\ncontrol = "{control}"\njustification = "partner MTA, OPS-1"\n'
        f'owner = "ops@example.test"\nexpires = {expires}\n'
    )


# every failing or erroring control of the sample run
ALL_FAILURES = ["TLS-VER[smtp]", "SMTP-LONGCMD[smtp]", "DMARC-PCT", "DKIM-KEY[sel1]"]


def test_the_example_file_loads() -> None:
    waivers = load_waivers(EXAMPLE)
    assert [w.control for w in waivers.waiver] == ["TLS-VER[smtp]", "DMARC-PCT"]


def test_a_bare_control_id_waives_every_subject(tmp_path: Path) -> None:
    waivers = load_waivers(_write(tmp_path, _waiver("DMARC-PCT")))
    applied = {c.id: d for c, _, d in waivers.apply(sample.controls(), TODAY)}
    assert applied["DMARC-PCT[example.test]"] is Disposition.WAIVED
    assert applied["TLS-VER[smtp]"] is Disposition.FAILED


def test_waived_failures_pass_the_gate(results_file: Path, tmp_path: Path) -> None:
    waivers = load_waivers(_write(tmp_path, "".join(_waiver(c) for c in ALL_FAILURES)))
    outcome = render_all(results_file, tmp_path / "out", waivers=waivers, today=TODAY)
    assert outcome.exit_code == 0
    html = outcome.report_html.read_text(encoding="utf-8")
    assert "partner MTA, OPS-1" in html and "ops@example.test" in html


def test_an_unwaived_failure_fails_the_gate(results_file: Path, tmp_path: Path) -> None:
    waivers = load_waivers(_write(tmp_path, "".join(_waiver(c) for c in ALL_FAILURES[1:])))
    outcome = render_all(results_file, tmp_path / "out", waivers=waivers, today=TODAY)
    assert outcome.exit_code == 1


def test_an_expired_waiver_fails_the_gate(results_file: Path, tmp_path: Path) -> None:
    body = "".join(_waiver(c) for c in ALL_FAILURES[1:]) + _waiver("TLS-VER[smtp]", "2025-03-31")
    waivers = load_waivers(_write(tmp_path, body))
    outcome = render_all(results_file, tmp_path / "out", waivers=waivers, today=TODAY)
    assert outcome.exit_code == 1
    assert 'data-disposition="waiver-expired"' in outcome.report_html.read_text(encoding="utf-8")
    # the day of expiry itself is still covered
    outcome = render_all(results_file, tmp_path / "out", waivers=waivers, today=date(2025, 3, 31))
    assert outcome.exit_code == 0


def test_an_expired_waiver_on_a_passing_control_still_fails(
    results_file: Path, tmp_path: Path
) -> None:
    body = "".join(_waiver(c) for c in ALL_FAILURES) + _waiver("SPF-ALL", "2024-01-01")
    waivers = load_waivers(_write(tmp_path, body))
    assert render_all(results_file, tmp_path / "o", waivers=waivers, today=TODAY).exit_code == 1


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (_waiver("X", '"soon"'), "waiver[0] (X).expires"),
        (
            _waiver("X").replace('owner = "ops@example.test"\n', ""),
            "waiver[0] (X).owner: required field is missing",
        ),
        (
            _waiver("X").replace("justification", "justifcation"),
            "justifcation: unknown field (expected one of: control, expires",
        ),
        (_waiver("X") + _waiver("Y").replace('"partner MTA, OPS-1"', '"  "'), "waiver[1] (Y)"),
        ('[[waiver]\ncontrol = "X"\n', "not valid TOML"),
        ('waivers = "x"\n', "waivers: unknown field"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_field(
    tmp_path: Path, body: str, names: str
) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_waivers(path)
    message = str(info.value)
    assert message.startswith(str(path)) and names in message
    assert "\n" not in message


def test_malformed_waivers_stop_the_report_command_with_exit_2(
    results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from maildrill.cli import main

    path = _write(tmp_path, _waiver("X", '"tomorrow"'))
    out = tmp_path / "out"
    assert main(["report", str(results_file), "--waivers", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expires" in err[0]
    assert not out.exists()  # nothing rendered
