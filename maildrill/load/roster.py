"""The master's roll of its workers: one that vanishes is reported, never forgotten.

Locust's master marks a worker *missing* after three heartbeats (3 s) without a word, and a
worker that quits by itself simply leaves; either way the master carries on with the others,
and the run offers less than it was asked to without any figure saying so. :class:`Roster`
keeps every worker the master has seen (its index, its pid, which each worker announces
(:data:`HELLO`) before its first user starts, and its last report), notices which go missing
or leave while the run is on, and which never send their final report; the run's raw figures
carry them as ``workers_lost``, which fails the run's verdict. The master's
:class:`~maildrill.load.state.State` holds its roster::

    roster.look(runner, started=state.started, now=time.time(), say=print)   # each tick
    roster.close()            # from here on workers leave because the master said so
    roster.lost_workers()     # [WorkerLoss(...)], as RawFigures.workers_lost
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maildrill.results import WorkerLoss

__all__ = ["HELLO", "Roster"]

HELLO = "maildrill:hello"  # worker -> master, at test_start: {"pid": ...}
MISSING = "missed its heartbeats (Locust: 3 s)"
LEFT = "left before the end of the run"
NO_FINAL = "sent no final report"


@dataclass
class _Worker:
    index: int
    last_report: float | None = None  # time.time()


class Roster:
    def __init__(self) -> None:
        self.seen: dict[str, _Worker] = {}
        self.pids: dict[str, int] = {}
        self.lost: dict[str, WorkerLoss] = {}
        self.closed = False

    @staticmethod
    def hello(runner: Any) -> None:
        """Worker side, at test_start: say which process this is."""
        runner.send_message(HELLO, {"pid": os.getpid()})

    def on_hello(self, environment: Any, msg: Any, **_: Any) -> None:
        self.pids[msg.node_id] = int(msg.data["pid"])

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        """Master side (``worker_report``)."""
        worker = self.seen.get(client_id)
        if worker is not None:  # else the next look enrols it
            worker.last_report = time.time()

    def look(self, runner: Any, *, started: float, now: float, say: Callable[[str], None]) -> None:
        """Enrol new workers; note those missing or gone; forgive those that came back."""
        # only ever reached inside Locust: importing it patches the process with gevent
        from locust.runners import STATE_MISSING, MasterRunner

        if self.closed or not isinstance(runner, MasterRunner):
            return
        master: Any = runner  # Locust's runner methods are untyped
        present = dict(master.clients.items())
        for client_id, node in present.items():
            if client_id not in self.seen:
                self.seen[client_id] = _Worker(index=int(master.get_worker_index(client_id)))
            if node.state == STATE_MISSING:
                self.lose(client_id, MISSING, started=started, now=now, say=say)
            elif client_id in self.lost and self.lost[client_id].reason == MISSING:
                # Locust's own self-healing: it was slow, not dead
                del self.lost[client_id]
                say(f"worker {self._name(client_id)} is back after missing heartbeats")
        for client_id in self.seen.keys() - present.keys():
            self.lose(client_id, LEFT, started=started, now=now, say=say)

    def lose(
        self, client_id: str, reason: str, *, started: float, now: float, say: Callable[[str], None]
    ) -> None:
        if client_id in self.lost or client_id not in self.seen:
            return
        worker = self.seen[client_id]
        heard = None if worker.last_report is None else round(worker.last_report - started, 1)
        self.lost[client_id] = WorkerLoss(
            worker=client_id,
            index=worker.index,
            pid=self.pids.get(client_id),
            lost_s=round(now - started, 1),
            last_report_s=heard,
            reason=reason,
        )
        last = "never reported" if heard is None else f"last report at t={heard:g}s"
        say(f"worker {self._name(client_id)} LOST at t={now - started:.1f}s: {reason}; {last}")

    def live(self, client_ids: set[str]) -> set[str]:
        return client_ids - self.lost.keys()

    def close(self) -> None:
        self.closed = True

    def lost_workers(self) -> list[WorkerLoss]:
        return sorted(self.lost.values(), key=lambda w: (w.lost_s, w.index))

    def _name(self, client_id: str) -> str:
        pid = self.pids.get(client_id)
        return f"#{self.seen[client_id].index} ({client_id}" + (f", pid {pid})" if pid else ")")
