"""Stopping: no load outlives maildrill, and a worker that vanishes fails the run.

Each test runs ``maildrill load`` as a user would, in a subprocess, against a counting SMTP
server on loopback, and holds what the server saw after the signal against what maildrill
reported. A signal (SIGINT, SIGTERM, SIGHUP) must stop every Locust process within 1 s, keep
the figures (``interrupted``) and exit 128 + the signal; ``kill -9`` of maildrill must stop
its Locust processes too; a ``--processes`` worker killed mid-run must fail the run.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from maildrill.reports import render_all
from maildrill.results import read_results
from tests.load.servers import SLOW_REPLY_S, Server, smtp_server, write_target

pytestmark = pytest.mark.slow

LOAD = [sys.executable, "-m", "maildrill", "load", "--scenario", "smtp_inbound", "--rate", "20"]
DURATION_S = 15  # never reached: each test ends the run long before
STOP_S = 1.0  # the promise: nothing reaches the server later than this after a signal
# how long we then watch the server for stragglers: a sender still alive at --rate 20 shows
# within a twentieth of a second on the sink; a transaction that was under way on
# slow_replies takes up to two slow replies to send its message
QUIET_S = 1.5
SLOW_QUIET_S = 2 * SLOW_REPLY_S
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _nothing_left_running(tmp_path: Path) -> Iterator[None]:
    """Whatever a failing run left sending is killed here, so it cannot disturb other tests."""
    yield
    for started in _STARTED:
        started.kill()
        started.communicate()
    _STARTED.clear()
    for proc in _locusts(tmp_path):
        with suppress(psutil.Error):
            proc.kill()


def _locusts(tmp_path: Path) -> list[psutil.Process]:
    """Live Locust processes of a run under tmp_path: the runner names its plan (or a
    remote worker's target) in their environment, and forked workers inherit it."""
    found = []
    for proc in psutil.process_iter():
        with suppress(psutil.Error):
            env = proc.environ()
            named = env.get("MAILDRILL_LOAD_PLAN", "") + env.get("MAILDRILL_WORKER_TARGET", "")
            if str(tmp_path) in named and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def _popen(*argv: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _STARTED.append(proc)
    return proc


def _start(target: Path, out: Path, *options: str) -> subprocess.Popen[str]:
    return _popen(
        *LOAD, "--target", str(target), "--out", str(out), "--duration", str(DURATION_S), *options
    )


def _wait_for(server: Server, messages: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while server.messages < messages:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"only {server.messages} messages in 60 s"
        time.sleep(0.02)


def _seen(server: Server) -> tuple[int, int]:
    return server.connections, server.messages


def _stop_and_watch(
    proc: subprocess.Popen[str], server: Server, signum: int, quiet: float = QUIET_S
) -> tuple[str, str, dict[str, tuple[int, int]]]:
    """Signal maildrill; the server's (connections, messages) at the signal, 1 s after it,
    1 s after maildrill exited, and ``quiet`` seconds later still; and maildrill's output,
    with how long it took to exit."""
    counts = {"signal": _seen(server)}
    t0 = time.monotonic()
    proc.send_signal(signum)
    time.sleep(STOP_S)
    counts["signal+1s"] = _seen(server)
    stdout, stderr = proc.communicate(timeout=60)
    exited = time.monotonic()
    time.sleep(max(0.0, exited + STOP_S - time.monotonic()))
    counts["exit+1s"] = _seen(server)
    time.sleep(quiet)
    counts["later"] = _seen(server)
    stderr += f"\n[maildrill exited {exited - t0:.2f} s after the signal]"
    return stdout, stderr, counts


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_stops_the_load_keeps_the_figures_and_names_itself(
    tmp_path: Path, signum: int, code: int
) -> None:
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        proc = _start(target, tmp_path / "out", "--per-session", "1")
        _wait_for(server, 20, proc)
        stdout, stderr, counts = _stop_and_watch(proc, server, signum)
        leftover = _locusts(tmp_path)
    evidence = f"server (connections, messages): {counts}\n{stdout[-1500:]}\n{stderr[-1500:]}"
    assert proc.returncode == code, evidence
    assert counts["later"] == counts["signal+1s"], "load went on after the signal: " + evidence
    assert counts["later"] == counts["exit+1s"], "load went on after maildrill: " + evidence
    assert not leftover, f"Locust still running: {leftover}"
    run = read_results(tmp_path / "out" / "results.json")
    assert run.interrupted and run.load is not None and run.load.interrupted, evidence
    acc = run.load.accounting
    assert acc is not None and 20 <= acc.accepted <= counts["later"][1], evidence
    assert "(interrupted)" in stdout, evidence
    if signum != signal.SIGINT:
        assert f"interrupted by {signal.Signals(signum).name}" in stderr, evidence


def test_ctrl_c_stops_transactions_in_flight_not_only_new_ones(tmp_path: Path) -> None:
    """Before, Locust was let finish each user's task (up to --stop-timeout): transactions
    under way went on to send their message after Ctrl-C."""
    with smtp_server("slow_replies") as server:
        target = write_target(tmp_path, server.port)
        proc = _start(target, tmp_path / "out")
        _wait_for(server, 3, proc)
        stdout, stderr, counts = _stop_and_watch(proc, server, signal.SIGINT, SLOW_QUIET_S)
    evidence = f"server (connections, messages): {counts}\n{stdout[-1500:]}\n{stderr[-1500:]}"
    assert proc.returncode == 130, evidence
    assert counts["later"] == counts["signal+1s"], "messages sent after Ctrl-C: " + evidence
    assert read_results(tmp_path / "out" / "results.json").interrupted, evidence


def test_sigterm_stops_the_processes_workers_and_loses_none(tmp_path: Path) -> None:
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        proc = _start(target, tmp_path / "out", "--processes", "2", "--per-session", "1")
        _wait_for(server, 20, proc)
        stdout, stderr, counts = _stop_and_watch(proc, server, signal.SIGTERM)
        leftover = _locusts(tmp_path)
    evidence = f"server (connections, messages): {counts}\n{stdout[-1500:]}\n{stderr[-1500:]}"
    assert proc.returncode == 143, evidence
    assert counts["later"] == counts["signal+1s"], "load went on after the signal: " + evidence
    assert not leftover, f"Locust still running: {leftover}"
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and load.interrupted, evidence
    # they stopped because they were told to: not lost
    assert load.workers_lost == [] and load.slo.checks["workers_lost"].met, evidence


def test_kill_9_of_maildrill_stops_locust_and_its_workers(tmp_path: Path) -> None:
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        proc = _start(target, tmp_path / "out", "--processes", "2", "--per-session", "1")
        _wait_for(server, 20, proc)
        assert len(_locusts(tmp_path)) == 3  # the master and its two workers
        at_kill = _seen(server)
        proc.kill()
        proc.communicate(timeout=10)
        time.sleep(STOP_S)
        one_second = _seen(server)
        leftover = _locusts(tmp_path)
        time.sleep(QUIET_S)
        later = _seen(server)
    evidence = f"(connections, messages) at kill {at_kill}, +1 s {one_second}, later {later}"
    assert not leftover, f"Locust outlived maildrill: {leftover}; {evidence}"
    assert later == one_second, "load went on after maildrill was killed: " + evidence


def test_a_worker_killed_mid_run_is_reported_and_fails_the_run(tmp_path: Path) -> None:
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        proc = _start(
            target, tmp_path / "out", "--processes", "2", "--duration", "8", "--timeout", "2"
        )
        _wait_for(server, 20, proc)
        master = next(p for p in _locusts(tmp_path) if p.ppid() == proc.pid)
        victim = master.children()[0]
        victim.kill()
        stdout, stderr = proc.communicate(timeout=90)
    evidence = f"{stdout[-2500:]}\n{stderr[-1500:]}"
    assert proc.returncode == 1, evidence
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and not load.interrupted, evidence
    assert [w.pid for w in load.workers_lost] == [victim.pid], evidence
    lost = load.workers_lost[0]
    assert "heartbeat" in lost.reason and lost.lost_s < 8 + 2, evidence
    assert load.slo.met is False and load.slo.checks["workers_lost"].measured == 1, evidence
    said = [ln for ln in stdout.splitlines() if "LOST" in ln and f"pid {victim.pid}" in ln]
    assert said, evidence  # live, when noticed, and in the summary
    assert "SLO MISSED" in stdout and "SLO met" not in stdout, evidence
    render_all(tmp_path / "out" / "results.json", tmp_path / "reports")
    page = (tmp_path / "reports" / "capacity.html").read_text(encoding="utf-8")
    assert "Worker lost" in page and f"(pid {victim.pid})" in page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _master(target: Path, out: Path, port: int, *options: str) -> subprocess.Popen[str]:
    return _start(
        target, out, "--master", "--master-bind-host", "127.0.0.1",
        "--master-bind-port", str(port), "--per-session", "1", *options,
    )  # fmt: skip


def _worker(target: Path, out: Path, port: int) -> subprocess.Popen[str]:
    return _popen(
        sys.executable, "-m", "maildrill", "load", "--worker", "--master-host", "127.0.0.1",
        "--master-port", str(port), "--target", str(target), "--out", str(out),
    )  # fmt: skip


@contextmanager
def _master_with_a_worker(
    tmp_path: Path,
) -> Iterator[tuple[Server, subprocess.Popen[str], subprocess.Popen[str]]]:
    """A sink, a --master and one --worker serving it, with the load under way."""
    port = _free_port()
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        boss = _master(target, tmp_path / "out", port)
        helper = _worker(target, tmp_path / "w", port)
        _wait_for(server, 20, boss)
        yield server, boss, helper


def test_sigterm_to_the_master_stops_its_remote_workers_at_once(tmp_path: Path) -> None:
    """A --master's users run in `maildrill load --worker` processes elsewhere: stopping
    the master must stop them, not let each finish its task."""
    with _master_with_a_worker(tmp_path) as (server, boss, helper):
        stdout, stderr, counts = _stop_and_watch(boss, server, signal.SIGTERM)
        helper_out, helper_err = helper.communicate(timeout=30)
    evidence = f"server (connections, messages): {counts}\n{stdout[-1500:]}\n{stderr[-1500:]}"
    assert boss.returncode == 143, evidence
    assert counts["later"] == counts["signal+1s"], "load went on after the signal: " + evidence
    assert helper.returncode == 0, helper_out[-1000:] + helper_err[-1000:]
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and load.interrupted and load.workers_lost == [], evidence


def test_a_remote_worker_stopped_by_sigterm_is_reported_by_its_master(tmp_path: Path) -> None:
    port = _free_port()
    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        boss = _master(target, tmp_path / "out", port, "--expect-workers", "2", "--duration", "8")
        helpers = [_worker(target, tmp_path / f"w{i}", port) for i in range(2)]
        _wait_for(server, 20, boss)
        helpers[0].send_signal(signal.SIGTERM)
        gone_out, gone_err = helpers[0].communicate(timeout=10)
        stdout, stderr = boss.communicate(timeout=90)
        helpers[1].communicate(timeout=30)
    evidence = f"{stdout[-2500:]}\n{stderr[-1500:]}"
    assert helpers[0].returncode == 143, gone_out[-1000:] + gone_err[-1000:]
    assert boss.returncode == 1, evidence
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and len(load.workers_lost) == 1, evidence
    assert load.workers_lost[0].reason == "left before the end of the run", evidence
    assert load.slo.met is False and "LOST" in stdout, evidence


def test_a_remote_worker_stops_when_its_master_is_killed(tmp_path: Path) -> None:
    """kill -9 of a --master: its Locust dies with it, and the workers on other machines,
    which are no one's children here, stop once the master's heartbeat has been silent for
    3 s (Locust's own limit is 60 s)."""
    with _master_with_a_worker(tmp_path) as (server, boss, helper):
        boss.kill()
        boss.communicate(timeout=10)
        t0 = time.monotonic()
        _, helper_err = helper.communicate(timeout=30)
        stopped_after = time.monotonic() - t0
        helper_code = helper.returncode
        time.sleep(STOP_S)
        settled = _seen(server)
        time.sleep(QUIET_S)
        later = _seen(server)
    evidence = f"worker stopped {stopped_after:.1f} s after the kill; {helper_err[-1500:]}"
    assert stopped_after < 3 + 5, evidence  # the silence, then a bounded stop
    # the run it served did not end well: not exit 0, and one line says why
    assert helper_code == 1 and "fell silent" in helper_err, evidence
    assert later == settled, f"load went on: {settled} then {later}; " + evidence
    assert not _locusts(tmp_path), evidence
