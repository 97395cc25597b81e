"""The one helper that times protocol phases and fires Locust request events.

Every client in :mod:`maildrill.clients` measures through a :class:`Meter`; nothing else fires
``request`` events, so every protocol is reported the same way::

    meter = Meter(environment.events.request.fire, "smtp")
    with meter.transaction("transaction") as tx:
        with meter.phase("connect"):
            sock = socket.create_connection(address, timeout=10)
        ...
    if tx.ok: ...

A phase that raises is reported once, with its error classified (:func:`classify`), and ends
the transaction; the transaction swallows the error, so nothing ever raises into a Locust
task. ``response_time`` is in milliseconds (Locust's unit) computed from integer
microseconds, and the exact microseconds are passed as ``context["us"]``.

A transaction given a ``timeout`` has a deadline for the whole of it, not per socket read: a
server trickling one byte a second satisfies every read timeout, so under gevent (Locust) a
``gevent.Timeout`` interrupts whatever the transaction is waiting on at the deadline, and a
phase that would begin after it does not begin. Either way the transaction fails with kind
``timeout``. An arrival cut short by the load generator itself (Locust stopping its users)
is reported as ``unfinished`` before the stop goes on, so none goes uncounted.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from maildrill.errors import DeadlineExceeded, PhaseError, ProtocolError, ReplyError
from maildrill.smtp_protocol import SYNTAX_ERROR

__all__ = [
    "ERROR_KINDS",
    "Fire",
    "Gauge",
    "Meter",
    "Transaction",
    "classify",
]

# the error kinds of issue 4; a reply code ("550") is used instead when the server sent one.
# "unfinished": a transaction still running when the load generator stopped its users
ERROR_KINDS = ("timeout", "refused", "reset", "tls", "protocol", "network", "error", "unfinished")
UNFINISHED = "unfinished"

Fire = Callable[..., Any]

# the running transaction's deadline (perf_counter_ns), per greenlet: a client may make a new
# Meter mid-transaction (one naming the node it connected to), so the Meter cannot hold it
_DEADLINE: ContextVar[int | None] = ContextVar("maildrill_deadline", default=None)


def classify(exc: BaseException) -> str:
    """The error kind of an exception, or the reply code the server sent."""
    if isinstance(exc, PhaseError):
        return exc.kind
    if not isinstance(exc, Exception):  # GreenletExit, KeyboardInterrupt: we stopped it
        return UNFINISHED
    if isinstance(exc, ReplyError):
        return exc.code
    if isinstance(exc, ProtocolError):  # no reply code, or garbage
        return "protocol"
    if isinstance(exc, smtplib.SMTPResponseException):
        # smtplib invents "500 Line too long." for a reply line over 8 KB: not the server's
        return "protocol" if _invented_by_smtplib(exc) else str(exc.smtp_code)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [str(code) for code, _ in exc.recipients.values()]
        return codes[0] if codes else "protocol"
    if isinstance(exc, TimeoutError | socket.timeout) or _timed_out(exc):
        return "timeout"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError | EOFError):
        return "reset"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "reset"
    if isinstance(exc, imaplib.IMAP4.abort):
        # imaplib turns a closed socket into abort("socket error: EOF")
        return "reset" if "EOF" in str(exc) else "protocol"
    if isinstance(exc, smtplib.SMTPException | imaplib.IMAP4.error | poplib.error_proto):
        return _reply_code(str(exc)) or "protocol"
    if isinstance(exc, OSError):
        return "network"
    if type(exc).__module__.startswith("imapclient"):
        return "protocol"
    return "error"


def _invented_by_smtplib(exc: smtplib.SMTPResponseException) -> bool:
    text = exc.smtp_error
    return exc.smtp_code == SYNTAX_ERROR and text in (b"Line too long.", "Line too long.")


def _timed_out(exc: BaseException) -> bool:
    """smtplib and imaplib re-raise a socket timeout as a disconnect or an abort."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | imaplib.IMAP4.abort):
        return isinstance(exc.__context__, TimeoutError) or "timed out" in str(exc)
    return False


def _reply_code(text: str) -> str | None:
    """POP3 and IMAP have no numeric codes; SMTP texts sometimes carry one."""
    head = text.strip().split(" ", 1)[0]
    return head if len(head) == 3 and head.isdigit() else None


@dataclass
class Transaction:
    """Outcome of a transaction: ``ok``, the error kind if not, and the phases it ran."""

    name: str
    start_ns: int
    ok: bool = True
    kind: str = ""
    detail: str = ""
    phases: list[str] = field(default_factory=list)


class Gauge:
    """A count of things open (IMAP connections), sampled at the start of every second.

    ``drain()`` hands over ``{second: level}`` for each wall-clock second begun since the
    last drain: the level in effect at that instant, not a peak. Every process samples the
    same instants, so the levels of several processes add up exactly (peaks would only
    add up to a bound: two processes' peaks need not fall at the same moment)::

        gauge = Gauge()
        gauge.up(); gauge.up(); gauge.down()
        gauge.drain()          # later: {1700000001: 1, 1700000002: 1}
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.value = 0
        self._clock = clock
        self._sampled = int(clock())  # the last second whose start level is recorded
        self._levels: dict[int, int] = {}

    def _sample(self) -> None:
        # every second begun since the last change started at the level still in effect
        now = int(self._clock())
        for second in range(self._sampled + 1, now + 1):
            self._levels[second] = self.value
        self._sampled = max(self._sampled, now)

    def up(self) -> None:
        self._sample()
        self.value += 1

    def down(self) -> None:
        self._sample()
        self.value = max(0, self.value - 1)

    def drain(self) -> dict[int, int]:
        self._sample()
        levels, self._levels = self._levels, {}
        return levels


class Meter:
    """Times phases of one protocol and fires one request event per phase.

    ``node`` (seed S4) and ``traffic_class`` (seed S8: ``inbound``, ``submission``) travel
    in each event's context so whole transactions can be broken down by them."""

    def __init__(
        self, fire: Fire, request_type: str, *, node: str = "", traffic_class: str = ""
    ) -> None:
        self._fire = fire
        self.request_type = request_type
        self.node = node
        self.traffic_class = traffic_class

    def emit(
        self,
        name: str,
        elapsed_ns: int,
        *,
        length: int = 0,
        exception: BaseException | None = None,
        start_time: float | None = None,
        arrival: bool = False,
    ) -> None:
        """Fire one request event. A listener that fails is Locust's to report (its event
        hook logs the traceback and fails the run's exit code); nothing here hides it."""
        us = max(0, elapsed_ns // 1000)
        self._fire(
            request_type=self.request_type,
            name=name,
            response_time=us / 1000.0,
            response_length=length,
            exception=exception,
            context={
                "us": us,
                "node": self.node,
                "class": self.traffic_class,
                "arrival": arrival,
            },
            start_time=start_time if start_time is not None else time.time(),
            url=self.node or None,
        )

    def phase(self, name: str) -> _Phase:
        """Time one phase; on error report it classified and raise :class:`PhaseError`."""
        return _Phase(self, name)

    @contextmanager
    def transaction(
        self,
        name: str = "transaction",
        *,
        start_ns: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[Transaction]:
        """Time a whole transaction and swallow any error into the :class:`Transaction`.

        ``start_ns`` (a ``perf_counter_ns`` value) is the intended start of an open-model
        arrival, so queueing delay counts toward latency (coordinated omission corrected);
        its event says it is an arrival (``context["arrival"]``), which the run's error
        rate and throughput count. ``timeout`` is the deadline of the whole transaction,
        from now (its actual start).
        """
        begin = time.perf_counter_ns() if start_ns is None else start_ns
        tx = Transaction(name, begin)
        wall = time.time() - (time.perf_counter_ns() - begin) / 1e9
        token = None
        if timeout is not None:
            token = _DEADLINE.set(time.perf_counter_ns() + int(timeout * 1e9))
        arrival = start_ns is not None
        try:
            with _alarm(timeout):
                yield tx
        except PhaseError as exc:
            tx.ok, tx.kind, tx.detail = False, exc.kind, exc.detail
        except Exception as exc:  # never raise into the user's task (Locust's rule for a client)
            # what a phase did not classify already (those arrive as PhaseError): a library's
            # error outside any phase, or maildrill's own bug, reported as this transaction's
            # failure with its text, kind "error" when classify() does not know it
            tx.ok, tx.kind, tx.detail = False, classify(exc), str(exc)[:200]
        except BaseException as exc:  # stopped by Locust: let the stop go on
            if arrival:  # an arrival still has an outcome; a watcher's session just ends
                err = PhaseError(UNFINISHED, f"still running when the load stopped ({exc!r})")
                self.emit(name, time.perf_counter_ns() - begin, exception=err, arrival=True)
            raise
        finally:
            if token is not None:
                _DEADLINE.reset(token)
        if tx.ok:
            self.emit(name, time.perf_counter_ns() - begin, start_time=wall, arrival=arrival)
        else:
            err = PhaseError(tx.kind, tx.detail)
            elapsed = time.perf_counter_ns() - begin
            self.emit(name, elapsed, exception=err, start_time=wall, arrival=arrival)


def _alarm(timeout: float | None) -> AbstractContextManager[object]:
    """Under gevent, an alarm that interrupts the transaction wherever it waits at the
    deadline. Without gevent (a plain thread) only the phase boundaries hold the deadline."""
    monkey = sys.modules.get("gevent.monkey")
    if timeout is None or monkey is None or not monkey.is_module_patched("socket"):
        return nullcontext()
    import gevent

    alarm: AbstractContextManager[object] = gevent.Timeout(
        timeout, DeadlineExceeded(f"no answer within {timeout:g} s")
    )
    return alarm


class _Phase:
    """:meth:`Meter.phase` as a plain class: it runs several times per message, and a
    generator-based context manager costs a few times more per use."""

    __slots__ = ("_meter", "_name", "_start", "_wall")

    def __init__(self, meter: Meter, name: str) -> None:
        self._meter = meter
        self._name = name

    def __enter__(self) -> None:
        deadline = _DEADLINE.get()
        if deadline is not None and time.perf_counter_ns() >= deadline:
            # not begun, so not reported: the transaction already failed as a timeout
            raise PhaseError("timeout", f"deadline passed before {self._name}")
        self._wall = time.time()
        self._start = time.perf_counter_ns()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        elapsed = time.perf_counter_ns() - self._start
        if exc is None:
            self._meter.emit(self._name, elapsed, start_time=self._wall)
            return False
        if isinstance(exc, PhaseError) or not isinstance(exc, Exception):
            return False
        error = PhaseError(classify(exc), str(exc)[:200])
        self._meter.emit(self._name, elapsed, exception=error, start_time=self._wall)
        raise error from exc
