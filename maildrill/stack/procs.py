"""Starting and stopping daemons by pid (never by process name).

Usage::

    proc = spawn(["/usr/sbin/knotd", "-c", conf], log=Path("knot.log"))
    stop_all([proc], timeout=10.0)

A spawned daemon gets a session of its own and is not our child, so nothing is left for
us to reap. A pid is only ours while its start time (``/proc/PID/stat`` field 22) is the
one recorded at spawn: pids are reused, and a stale state file must never make us signal
a stranger. Stopping signals each daemon, waits for every process of its session (its
workers) to go, and only then kills the stragglers, each by its pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Proc", "identify", "now_ticks", "spawn", "stop_all", "stragglers"]

# `setsid` in a non-interactive shell's background job is not a group leader, so it
# calls setsid(2) and execs in place: $! is the daemon's own pid
_SPAWN = 'setsid "$@" >>"$MAILDRILL_LOG" 2>&1 </dev/null & echo $!'


@dataclass(frozen=True)
class Proc:
    """A daemon we started: its pid, its session and when it started (clock ticks)."""

    pid: int
    session: int
    start: int

    def running(self) -> bool:
        st = _stat(self.pid)
        return st is not None and st.start == self.start and _live(self.pid, st.state)


@dataclass(frozen=True)
class _Stat:
    state: str
    session: int
    start: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rpartition(")")[2].split()  # fields[0] is stat field 3
    return _Stat(state=fields[0], session=int(fields[3]), start=int(fields[19]))


def _live(pid: int, state: str) -> bool:
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


def identify(pid: int, wait: float = 2.0) -> Proc:
    """The running process ``pid`` as a Proc. Its session counts only once it leads it
    (``setsid`` done): a session inherited from whoever started it is not the daemon's."""
    deadline = time.monotonic() + wait
    while True:
        st = _stat(pid)
        if st is None:
            return Proc(pid, 0, -1)  # already gone: never "running"
        if st.session == pid or time.monotonic() > deadline:
            return Proc(pid, st.session if st.session == pid else 0, st.start)
        time.sleep(0.01)


def spawn(argv: list[str], log: Path) -> Proc:
    """Start ``argv`` detached in a new session, output appended to ``log``."""
    out = subprocess.run(
        ["sh", "-c", _SPAWN, "sh", *argv],
        env={**os.environ, "MAILDRILL_LOG": str(log)},
        capture_output=True,
        text=True,
        check=True,
    )
    return identify(int(out.stdout.strip()))


def stragglers(procs: Iterable[Proc], until: int | None = None) -> list[int]:
    """Live processes of these daemons: the daemons themselves, and the members of their
    sessions that started after them (and before ``until``, clock ticks, if given)."""
    procs = list(procs)
    found = {p.pid for p in procs if p.running()}
    earliest = {p.session: p.start for p in procs if p.session and p.session != os.getsid(0)}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is None or st.session not in earliest or st.start < earliest[st.session]:
            continue
        if until is not None and st.start > until:
            continue
        if _live(int(entry.name), st.state):
            found.add(int(entry.name))
    return sorted(found)


def now_ticks() -> int:
    """The current time as /proc/PID/stat counts start times (clock ticks since boot)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK")) + 1


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_all(procs: Iterable[Proc], timeout: float = 10.0) -> list[int]:
    """Stop daemons in parallel: SIGTERM each, wait, SIGKILL what is left.

    Only daemons still running as recorded are touched, and only their sessions: a daemon
    already gone when this starts leaves its session alone. Returns the pids killed.
    """
    mine = [p for p in procs if p.running()]
    until = now_ticks()
    for proc in mine:
        _signal(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not stragglers(mine, until):
            return []
        time.sleep(0.05)
    killed = stragglers(mine, until)
    for pid in killed:
        _signal(pid, signal.SIGKILL)
    return killed
