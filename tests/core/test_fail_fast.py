"""Fail fast, always say why (issue 14 item 1), on the command line.

What can be known before the first probe stops the run before it, with one line and exit 2:
the target file, the accounts' passwords, the load's safety rules and options, ``--out``,
the waiver file, a selection of no control. Every exit 1 names its causes.

The closed-port target shows "before the first probe": preflight would find it unreachable
(exit 3), so an exit 2 there was decided before preflight ran.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.results import read_results

UNSET = "MAILDRILL_TEST_NEVER_SET"


def maildrill(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    return subprocess.run(
        [sys.executable, "-m", "maildrill", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed once the socket is: a refused connect


def closed_target(folder: Path, *, accounts: str = "", safety: str = "") -> Path:
    """Every endpoint at a closed loopback port; passwords from a file unless ``accounts``."""
    port = _closed_port()
    (folder / "passwords").write_text("secret\n", encoding="utf-8")
    path = folder / "closed.toml"
    path.write_text(
        'name = "closed"\ndomain = "closed.test"\n'
        f'[endpoints.smtp]\nurl = "smtp://127.0.0.1:{port}"\n'
        f'[endpoints.imap]\nurl = "imap://127.0.0.1:{port}"\n'
        + (accounts or '[accounts]\npassword_file = "passwords"\n')
        + safety,
        encoding="utf-8",
    )
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``maildrill ARGV`` in this process: what is tested here happens before any probe,
    which a new process per case would only slow down."""
    from maildrill.cli import main

    code = main(list(argv))
    said = capsys.readouterr()
    return code, said.out, said.err


def one_line(result: tuple[int, str, str], command: str) -> str:
    """The one stderr line of an exit 2, the run stopped before preflight (which would have
    found the closed port: exit 3)."""
    code, out, err = result
    lines = err.strip().splitlines()
    assert code == 2, out[-2000:] + err[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"maildrill {command}: "), err
    assert "reachable" not in out and "refused" not in out, "preflight ran"
    return lines[0]


# -- before the first probe ---------------------------------------------------------------

RUNS = {
    "check": ["check"],
    "drill": ["drill", "--duration", "1"],
    "load": ["load", "--scenario", "smtp_inbound", "--duration", "1", "--rate", "1"],
}


@pytest.mark.parametrize("command", sorted(RUNS))
def test_an_unset_password_variable_stops_the_run_before_any_probe(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """Before: every check ran and 14 ended ``error`` (ConfigError), exit 1 (here, 3)."""
    monkeypatch.delenv(UNSET, raising=False)
    target = closed_target(tmp_path, accounts=f'[accounts]\npassword_env = "{UNSET}"\n')
    argv = [*RUNS[command], "--target", str(target), "--out", str(tmp_path / "out")]
    line = one_line(run_cli(capsys, *argv), command)
    assert f"accounts.password_env: environment variable {UNSET} is not set" in line


@pytest.mark.parametrize("command", ["drill", "load"])
def test_load_outside_the_allowed_networks_is_refused_before_any_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Before: drill ran every check (here: preflight, exit 3) before refusing the load."""
    target = closed_target(tmp_path, safety='[safety]\nallowed_networks = ["10.0.0.0/8"]\n')
    argv = [*RUNS[command], "--target", str(target), "--out", str(tmp_path / "out")]
    line = one_line(run_cli(capsys, *argv), command)
    assert "outside safety.allowed_networks (10.0.0.0/8); load refused" in line


def test_a_drill_rate_above_max_rate_is_refused_before_any_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = closed_target(tmp_path, safety="[safety]\nmax_rate = 20\n")
    argv = ["drill", "--target", str(target), "--rate", "50", "--out", str(tmp_path)]
    assert "rate 50/s exceeds safety.max_rate 20/s of closed" in one_line(
        run_cli(capsys, *argv), "drill"
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["load", "--rate", "0"], "--rate: must be more than 0"),
        (["load", "--rate", "-5"], "--rate: must be more than 0"),
        (["load", "--grace", "-1"], "--grace: must be more than 0"),
        (["drill", "--rate", "0"], "--rate: must be more than 0"),
        (["drill", "--duration", "-1"], "--duration: must be 0 (no load run) or more"),
        (["drill", "--users", "0"], "--users: must be at least 1"),
        (["drill", "--message-size", "10"], "--message-size: at least 100 bytes"),
        (["drill", "--prepopulate", "-1"], "--prepopulate: must be 0 or more"),
        (["drill", "--message-profile", "no-such.toml"], "no-such.toml"),
    ],
)
def test_a_wrong_load_option_is_refused_before_any_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], names: str
) -> None:
    """Before: ``load --rate 0`` ran at safety.max_rate (100/s); drill found its load
    options wrong only after every check had run."""
    target = closed_target(tmp_path)
    command, *options = args
    if command == "load":
        options += ["--scenario", "smtp_inbound", "--duration", "1"]
    argv = [command, "--target", str(target), "--out", str(tmp_path / "o"), *options]
    assert names in one_line(run_cli(capsys, *argv), command)


def _not_a_directory(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "a-file"
    path.write_text("x", encoding="utf-8")
    return path, "exists and is not a directory"


def _under_a_file(tmp_path: Path) -> tuple[Path, str]:
    path, _ = _not_a_directory(tmp_path)
    return path / "out", "cannot be created"


def _unwritable(tmp_path: Path) -> tuple[Path, str]:
    # even root cannot write there
    return Path("/sys/kernel"), "cannot be written"


@pytest.mark.parametrize("where", [_not_a_directory, _under_a_file, _unwritable])
@pytest.mark.parametrize("command", [*sorted(RUNS), "report"])
def test_an_out_that_cannot_be_written_is_one_line_before_any_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, where: object
) -> None:
    """Before: a FileExistsError traceback once every check had run."""
    out, says = where(tmp_path)  # type: ignore[operator]
    if command == "report":
        from maildrill.results import write_results
        from tests.reports import sample

        results = write_results(sample.run(), tmp_path / "results.json")
        argv = ["report", str(results), "--out", str(out)]
    else:
        argv = [*RUNS[command], "--target", str(closed_target(tmp_path)), "--out", str(out)]
    line = one_line(run_cli(capsys, *argv), command)
    assert f"--out {out}: {says}" in line, line


def test_the_command_line_says_it_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    """The same, as a user meets it: a process of its own, stderr one line, no traceback."""
    out, _ = _not_a_directory(tmp_path)
    proc = maildrill("drill", "--target", str(closed_target(tmp_path)), "--out", str(out))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"maildrill drill: --out {out}: exists and is not a directory"
    ]
    assert proc.stdout == ""


# -- against the embedded target ----------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from maildrill.embedded import launch

    with launch(tmp_path_factory.mktemp("lab"), accounts=2) as target:
        yield target


def test_an_unset_password_on_a_live_target_is_exit_2_not_14_errors(
    embedded: Path, tmp_path: Path
) -> None:
    """The issue's own case: before, every check ran and 14 ended ``error``, exit 1."""
    text = embedded.read_text(encoding="utf-8")
    start = text.index("password_file")
    unset = tmp_path / "unset.toml"
    unset.write_text(
        text[:start] + f'password_env = "{UNSET}"' + text[text.index("\n", start) :],
        encoding="utf-8",
    )
    proc = maildrill("check", "--target", str(unset), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"maildrill check: {unset}: accounts.password_env: environment variable {UNSET} is not set"
    ]
    assert proc.stdout == ""  # before preflight
    assert not (tmp_path / "out" / "results.json").exists()


def test_k_selects_a_control_by_the_id_the_report_shows(embedded: Path, tmp_path: Path) -> None:
    """Before: ``-k DNS-MX-PRESENT`` matched no pytest test name: 0 controls, exit 0."""
    proc = maildrill(
        "check", "--target", str(embedded), "-k", "DNS-MX-PRESENT", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [c.id for c in read_results(tmp_path / "results.json").controls] == ["DNS-MX-PRESENT"]


def test_control_selects_by_id_and_glob_and_is_repeatable(embedded: Path, tmp_path: Path) -> None:
    proc = maildrill(
        "check", "--target", str(embedded), "--out", str(tmp_path),
        "--control", "REACH-CONNECT[imap]", "--control", "GREET-*",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ids = sorted(c.id for c in read_results(tmp_path / "results.json").controls)
    assert "REACH-CONNECT[imap]" in ids and "REACH-CONNECT[imaps]" not in ids
    greetings = [i for i in ids if i != "REACH-CONNECT[imap]"]
    assert greetings and all(i.startswith("GREET-") for i in greetings), ids


@pytest.mark.parametrize(
    ("selection", "named"),
    [
        (["-k", "NO-SUCH-CONTROL"], "-k 'NO-SUCH-CONTROL'"),
        # the plugin's own test shows --control selecting nothing; this, the line it makes
        pytest.param(["--control", "TLS-NOPE*"], "--control 'TLS-NOPE*'", marks=pytest.mark.slow),
    ],
)
def test_a_selection_of_no_control_is_exit_2_naming_it(
    embedded: Path, tmp_path: Path, selection: list[str], named: str
) -> None:
    """Before: "0 passed, 0 failed", exit 0, and a report saying "Gate: PASS"."""
    out = tmp_path / "out"
    proc = maildrill("check", "--target", str(embedded), "--out", str(out), *selection)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert lines == [f"maildrill check: no control selected by {named}"], proc.stderr
    assert not (out / "report.html").exists()


def test_an_expired_waiver_says_why_the_gate_failed(embedded: Path, tmp_path: Path) -> None:
    """Before: exit 1 with "1 passed, 0 failed" on the console and nothing on stderr."""
    waivers = tmp_path / "waivers.toml"
    waivers.write_text(
        '[[waiver]]\ncontrol = "DMARC-PCT"\njustification = "OPS-1"\n'
        'owner = "ops@example.test"\nexpires = 2020-01-31\n',
        encoding="utf-8",
    )
    proc = maildrill(
        "check", "--target", str(embedded), "-k", "DNS-MX-PRESENT", "--waivers", str(waivers),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "gate: FAIL",
        "  waiver-expired  DMARC-PCT: waiver expired on 2020-01-31 (owner ops@example.test); "
        "renew or remove it",
    ]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "DMARC-PCT: waiver expired on 2020-01-31" in html
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert 'name="gate-cause" value="waiver-expired: DMARC-PCT: waiver expired' in junit
    assert json.loads((tmp_path / "results.json").read_text())["controls"][0]["verdict"] == "pass"
