"""Daemons are stopped by pid, and only while the pid is still the process we started."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from maildrill.stack import procs


def test_spawned_daemon_leads_its_session_and_stops(tmp_path: Path) -> None:
    proc = procs.spawn(["sleep", "30"], tmp_path / "sleep.log")
    assert proc.running() and proc.session == proc.pid
    assert procs.stop_all([proc], timeout=5) == []
    assert not proc.running() and procs.stragglers([proc]) == []


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    proc = procs.spawn(["sleep", "30"], tmp_path / "sleep.log")
    try:
        # the same pid with another start time: what a stale state file would hold
        stranger = dataclasses.replace(proc, start=proc.start - 1)
        assert not stranger.running()
        assert procs.stop_all([stranger], timeout=1) == []
        assert proc.running()
    finally:
        procs.stop_all([proc], timeout=5)
