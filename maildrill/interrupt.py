"""SIGINT, SIGTERM and SIGHUP end a run alike: as :class:`Interrupted`, a KeyboardInterrupt.

Every path that keeps partial results on Ctrl-C so keeps them on the other two signals too,
and the exit code names the signal as a shell does (128 + its number: 130, 143, 129)::

    with interrupt.handled():
        try:
            run()
        except KeyboardInterrupt:
            code = interrupt.exit_code()

Only the first signal interrupts: the later ones find a run already stopping, and every step
of a stop is bounded, so they are noted and ignored rather than allowed to break the stop
half-way (which could leave load running). Code that must not be interrupted between two
statements (starting a subprocess it will have to stop) runs ``with held():`` and calls
:func:`check` once it can clean up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = [
    "SIGNALS",
    "Interrupted",
    "check",
    "describe",
    "exit_code",
    "handled",
    "held",
    "received",
]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    received: int | None = None  # the first signal
    holding = False
    pending = False  # it came while held and has not been raised yet


_state = _State()


@contextmanager
def handled() -> Iterator[None]:
    """Turn the three signals into :class:`Interrupted` for the duration of the block
    (a command's whole run); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; Ctrl-C still interrupts as usual
        return
    _state.received, _state.holding, _state.pending = None, False, False
    previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state.received is not None:
        return  # already stopping
    _state.received = signum
    if _state.holding:
        _state.pending = True
        return
    raise Interrupted(signum)


@contextmanager
def held() -> Iterator[None]:
    """A signal arriving in the block is kept for :func:`check` instead of raised."""
    _state.holding = True
    try:
        yield
    finally:
        _state.holding = False


def check() -> None:
    """Raise :class:`Interrupted` for a signal that arrived while :func:`held`."""
    if _state.pending and _state.received is not None:
        _state.pending = False
        raise Interrupted(_state.received)


def received() -> int | None:
    """The signal that interrupted this run, if one did (within :func:`handled`)."""
    return _state.received


def describe() -> str:
    """``" by SIGTERM"`` or ``" by SIGHUP"``; nothing for Ctrl-C, which the user knows of."""
    if _state.received in (None, signal.SIGINT):
        return ""
    return f" by {signal.Signals(_state.received).name}"


def exit_code() -> int:
    """128 + the signal's number; 130 (Ctrl-C) when none was caught here."""
    return 128 + (_state.received or signal.SIGINT)
