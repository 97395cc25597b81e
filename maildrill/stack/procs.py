"""Starting and stopping daemons by pid (never by process name).

Usage::

    pid = spawn(["/usr/sbin/knotd", "-c", conf], log=Path("knot.log"))
    stop_all([pid, other_pid], timeout=10.0)

A spawned daemon gets a session of its own and is not our child, so nothing is left for
us to reap; stopping signals the recorded pid, then waits for every process of its session
(the daemon's workers) to go, and only then kills the stragglers, each by its pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["alive", "session_members", "session_of", "spawn", "stop_all"]

# `setsid` in a non-interactive shell's background job is not a group leader, so it
# calls setsid(2) and execs in place: $! is the daemon's own pid
_SPAWN = 'setsid "$@" >>"$MAILDRILL_LOG" 2>&1 </dev/null & echo $!'


def spawn(argv: list[str], log: Path) -> int:
    """Start ``argv`` detached in a new session, output appended to ``log``; its pid."""
    out = subprocess.run(
        ["sh", "-c", _SPAWN, "sh", *argv],
        env={**os.environ, "MAILDRILL_LOG": str(log)},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rpartition(")")[2].split()
    return fields[0], int(fields[3])


def _live_state(pid: int, state: str) -> bool:
    if state not in ("Z", "X"):
        return True
    # a thread-group leader that has exited shows Z while its other threads still run
    # (OpenDKIM, spamass-milter): the process is alive while any task is
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        if raw.rpartition(")")[2].split()[0] not in ("Z", "X"):
            return True
    return False


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and _live_state(pid, st[0])


def session_of(pid: int) -> int | None:
    st = _stat(pid)
    return None if st is None else st[1]


def session_members(sessions: Iterable[int]) -> list[int]:
    """Live pids whose session is one of ``sessions``."""
    wanted = set(sessions) - {os.getsid(0)}  # never our own session
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None and st[1] in wanted and _live_state(int(entry.name), st[0]):
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_all(pids: dict[int, int | None], timeout: float = 10.0) -> list[int]:
    """Stop daemons in parallel: SIGTERM each pid, wait, SIGKILL what is left.

    ``pids`` maps each daemon's pid to its session id (recorded at start). Returns the
    pids that had to be killed.
    """
    sessions = {sid for sid in pids.values() if sid is not None}
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)] + session_members(sessions)
        if not left:
            return []
        time.sleep(0.05)
    killed = sorted(set([p for p in pids if alive(p)] + session_members(sessions)))
    for pid in killed:
        _signal(pid, signal.SIGKILL)
    return killed
