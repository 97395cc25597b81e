"""A Locust process started by maildrill dies with its parent: no load outlives the run.

maildrill starts Locust in a session of its own (so a terminal's Ctrl-C reaches maildrill,
which stops Locust in order and keeps the figures). If maildrill itself is killed (``kill
-9``, the OOM killer), nothing would stop that session: Locust and its ``--processes``
workers would go on sending until Locust's own backstop. So each of them ties itself to its
parent: Linux's ``PR_SET_PDEATHSIG`` has the kernel SIGKILL it the moment the parent goes,
and a greenlet watching the parent's pid does the same a moment later where that is not
available. The runner names the parent in :data:`PARENT_ENV`; a plain ``locust -f`` run has
no such variable and is left alone (a user's ``nohup locust`` must survive its shell)::

    parent = claim()           # at import, before Locust forks its --processes workers
    ...
    arm(parent)                # in each process, once gevent runs (Locust's init event)

A worker on another machine (``maildrill load --worker``) is not the master's child: it
watches the master's heartbeat instead (:func:`follow_master`), and stops its users at once
when the master has been silent for :data:`MASTER_SILENCE_S` (Locust's own limit is 60 s).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MASTER_SILENCE_S",
    "MASTER_SILENT",
    "PARENT_ENV",
    "Claim",
    "arm",
    "claim",
    "follow_master",
]

PARENT_ENV = "MAILDRILL_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_EVERY_S = 0.2
GONE_EXIT = 128 + signal.SIGKILL  # as if the kernel had done it
# the line a worker leaves in its log when it stops for that reason (run_worker reads it)
MASTER_SILENT = "maildrill: no heartbeat from the master"
# as long as Locust's master waits before it calls a silent worker missing
MASTER_SILENCE_S = 3.0


@dataclass(frozen=True)
class Claim:
    """Who this Locust is tied to: ``parent`` for the process Python started in,
    ``home`` (that process) for the workers Locust forks from it."""

    home: int
    parent: int


def claim() -> Claim | None:
    """Read and clear :data:`PARENT_ENV`, so nothing this process starts inherits it."""
    named = os.environ.pop(PARENT_ENV, "")
    if not named.isdigit():
        return None
    return Claim(home=os.getpid(), parent=int(named))


def arm(tie: Claim | None) -> None:
    """Die with the parent from now on; at once if it is gone already."""
    if tie is None:
        return
    parent = tie.parent if os.getpid() == tie.home else tie.home
    _pdeathsig(signal.SIGKILL)
    # the parent may have died before the kernel was told: then we are someone else's
    if os.getppid() != parent:
        _gone(parent)
    import gevent  # only ever reached inside Locust: the CLI imports PARENT_ENV from here

    gevent.spawn(_watch, parent)


def _pdeathsig(signum: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watch below still holds


def _watch(parent: int) -> None:
    import gevent

    while os.getppid() == parent:
        gevent.sleep(WATCH_EVERY_S)
    _gone(parent)


def _gone(parent: int) -> None:
    print(f"maildrill: parent process {parent} is gone; stopping the load", file=sys.stderr)
    sys.stderr.flush()
    os._exit(GONE_EXIT)


def follow_master(runner: Any, stop: Callable[[], None]) -> None:
    """Worker: once the master has answered, ``stop()`` (users) and quit if it falls silent."""
    import gevent

    def watch() -> None:
        while True:
            gevent.sleep(WATCH_EVERY_S)
            last = runner.last_heartbeat_timestamp
            if last and time.time() - last > MASTER_SILENCE_S:
                print(
                    f"{MASTER_SILENT} for {MASTER_SILENCE_S:g} s; stopping the load",
                    file=sys.stderr,
                    flush=True,
                )
                stop()
                runner.quit()
                return

    gevent.spawn(watch)
