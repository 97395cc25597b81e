"""maildrill drill, end to end: the embedded target, checks, a load run, the reports."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from maildrill.results import SCHEMA_PATH, read_results


def maildrill(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildrill", *args], capture_output=True, text=True, timeout=timeout
    )


def _read_until(proc: subprocess.Popen[bytes], pattern: str, *, within: float) -> str:
    """What ``proc`` printed up to the first line matching ``pattern``, polled as it comes."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + within
    while not re.search(pattern, seen.decode(errors="replace"), re.MULTILINE):
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"no {pattern!r} in {within:g} s: {seen!r}"
        if select.select([proc.stdout], [], [], min(left, 0.5))[0]:
            seen += os.read(proc.stdout.fileno(), 4096)
    return seen.decode(errors="replace")


@pytest.mark.slow
def test_drill_against_the_embedded_target(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = maildrill("drill", "--out", str(out), "--duration", "6", "--users", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("results.json", "report.html", "capacity.html", "junit.xml"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    run = read_results(out / "results.json")
    ids = {c.id for c in run.controls}
    assert {"REACH-CONNECT[smtp]", "GREET-IMAP[imaps]", "CAP-SMTP-AUTH[submission]"} <= ids
    assert all(c.verdict in ("pass", "not-applicable") for c in run.controls)
    # the load run is real: messages sent over SMTP and seen over IMAP, with percentiles
    assert run.load is not None and run.load.accounting is not None
    acc = run.load.accounting
    assert acc.accepted > 0 and acc.delivered == acc.accepted and acc.lost == 0
    phases = {(p.request_type, p.name): p for p in run.load.phases}
    assert phases[("smtp", "transaction")].count == acc.sent
    assert phases[("smtp", "transaction")].latency.p99_us > 0
    assert run.load.delivery is not None and run.load.delivery.count == acc.delivered
    assert "delivery latency" in proc.stdout  # the summary at the end


@pytest.mark.slow
def test_drill_passes_the_traffic_options_to_its_load_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = maildrill(
        "drill", "--out", str(out), "-k", "reach", "--duration", "3", "--users", "2",
        "--rate", "4", "--watch", "pop3", "--recipients", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    load = read_results(out / "results.json").load
    assert load is not None and load.accounting is not None
    assert load.watch == "pop3"
    assert {("pop3s", "uidl"), ("pop3s", "retr")} <= {(p.request_type, p.name) for p in load.phases}
    acc = load.accounting
    assert acc.sent == 2 * acc.messages and acc.delivered == acc.accepted == acc.sent, acc


def test_unreachable_target_exits_3_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "down.toml"
    (tmp_path / "passwords").write_text("secret\n")  # a target without any is exit 2 first
    path.write_text(
        'name = "down"\ndomain = "d.test"\n'
        '[endpoints.smtp]\nurl = "smtp://127.0.0.1:9"\n'
        '[endpoints.imap]\nurl = "imap://127.0.0.1:9"\n'
        '[accounts]\npassword_file = "passwords"\n'
    )
    for command in ("check", "drill"):
        proc = maildrill(command, "--target", str(path), "--out", str(tmp_path / command))
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"maildrill {command}: target 'down' unreachable: 127.0.0.1 (127.0.0.1:9) refused"
        ]


@pytest.mark.parametrize(("signal_name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_during_the_checks_keeps_what_was_checked(
    tmp_path: Path, signal_name: str, code: int
) -> None:
    import signal

    from maildrill.embedded import launch

    with launch(tmp_path / "lab", accounts=2) as target:
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "maildrill", "check", "--target", str(target),
             "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        # pytest's progress line: its first mark is the first control checked (of ~20 s)
        before = _read_until(proc, r"^[.sFE]", within=60)
        proc.send_signal(getattr(signal, signal_name))
        out_bytes, err_bytes = proc.communicate(timeout=60)
    stdout, stderr = before + out_bytes.decode(), err_bytes.decode()
    assert proc.returncode == code, stdout[-2000:] + stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("maildrill check: interrupted")
    run = read_results(out / "results.json")
    assert run.interrupted and run.ended is not None
    assert run.controls, "the controls checked before the signal are kept"
    # and rendered, as drill does: the auditor's report of what was found before the stop
    for name in ("report.html", "junit.xml"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("ended_early", [False, True])
def test_a_load_run_locust_ended_early_cannot_pass_the_drill(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ended_early: bool,
) -> None:
    """No signal, but Locust stopped before the plan was done (its backstop; no worker
    left): the partial figures cannot pass the drill, whatever they say."""
    import argparse

    import maildrill.load
    from maildrill.cli import drill
    from tests.reports import sample

    target = tmp_path / "t.toml"
    (tmp_path / "passwords").write_text("secret\n")
    target.write_text(
        'name = "t"\ndomain = "d.test"\n[endpoints.smtp]\nurl = "smtp://127.0.0.1:2525"\n'
        '[endpoints.imap]\nurl = "imap://127.0.0.1:2143"\n[accounts]\npassword_file = "passwords"\n'
    )
    load = sample.load().model_copy(update={"interrupted": ended_early})
    monkeypatch.setattr(drill, "preflight", lambda *a, **k: {})
    monkeypatch.setattr(drill, "run_checks", lambda *a, **k: [])
    monkeypatch.setattr(maildrill.load, "run_load", lambda *a, **k: load)
    parser = argparse.ArgumentParser()
    drill.add_arguments(parser)
    args = parser.parse_args(["--target", str(target), "--out", str(tmp_path / "out")])
    code = drill.run(args)
    assert code == (1 if ended_early else 0)
    # the gate says why, on the console and atop the report
    cause = "the load run ended before its plan was done"
    assert (cause in capsys.readouterr().err) is ended_early
    assert (cause in (tmp_path / "out" / "report.html").read_text()) is ended_early
