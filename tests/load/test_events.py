"""The one event helper and the SMTP client: phase names, classified errors, never raising.

Real sockets on loopback, as aiosmtpd's own tests do.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from maildrill.clients.events import Meter, classify
from maildrill.clients.nodes import NodeCycle
from maildrill.clients.smtp import SmtpClient
from maildrill.errors import PhaseError, ReplyError

REJECTED = "nobody@example.test"


class Events:
    def __init__(self) -> None:
        self.fired: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.fired.append(kwargs)

    def names(self) -> list[str]:
        return [e["name"] for e in self.fired]

    def failed(self) -> dict[str, str]:
        return {e["name"]: classify(e["exception"]) for e in self.fired if e["exception"]}


class Handler:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == REJECTED:
            return "550 5.1.1 no such user"  # RFC 5321 §4.2.2
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        self.received.append(envelope.original_content)
        return "250 2.0.0 queued"


HANDLER = Handler()


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int]]:
    with socket.socket() as s:  # aiosmtpd's readiness probe cannot use port 0
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    HANDLER.received.clear()
    controller = Controller(HANDLER, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield ("127.0.0.1", port)
    finally:
        controller.stop()


def _client(events: Events, address: tuple[str, int], timeout: float = 5.0) -> SmtpClient:
    return SmtpClient(events, NodeCycle("127.0.0.1", [address]), timeout=timeout)


def test_meter_fires_one_event_per_phase_and_swallows_errors() -> None:
    events = Events()
    meter = Meter(events, "smtp")
    with meter.transaction() as tx:
        with meter.phase("connect"):
            pass
        with meter.phase("mail"):
            raise ReplyError(451, "try later")
        with meter.phase("rcpt"):  # never reached
            pass
    assert not tx.ok and tx.kind == "451"
    assert events.names() == ["connect", "mail", "transaction"]
    assert events.failed() == {"mail": "451", "transaction": "451"}
    assert all(e["request_type"] == "smtp" for e in events.fired)
    assert all(isinstance(e["context"]["us"], int) for e in events.fired)


def _broken_listener(**_: Any) -> None:
    raise RuntimeError("listener bug")


def test_a_broken_listener_is_locusts_to_report(caplog: pytest.LogCaptureFixture) -> None:
    """Under Locust a failing listener never reaches the task: Locust's event hook logs it
    (and fails the run's exit code)."""
    from locust.event import EventHook

    hook = EventHook()
    hook.add_listener(_broken_listener)
    meter = Meter(hook.fire, "imap")
    with (
        caplog.at_level(logging.ERROR),
        meter.transaction("session") as tx,
        meter.phase("login"),
    ):
        pass
    assert tx.ok
    assert "listener bug" in caplog.text


def test_the_meter_hides_no_listener_failure() -> None:
    """maildrill's own listener bugs must show: the Meter swallows nothing."""
    with pytest.raises(RuntimeError, match="listener bug"):
        Meter(_broken_listener, "imap").emit("login", 1000)


def test_intended_start_counts_toward_latency() -> None:
    events = Events()
    meter = Meter(events, "smtp")
    with meter.transaction(start_ns=time.perf_counter_ns() - 2_000_000_000):
        pass
    assert events.fired[0]["context"]["us"] >= 2_000_000  # coordinated omission corrected


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError(), "timeout"),
        (ConnectionRefusedError(), "refused"),
        (ConnectionResetError(), "reset"),
        (PhaseError("tls"), "tls"),
        (OSError("no route"), "network"),
        (ValueError("bug"), "error"),
    ],
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_smtp_phases_and_reply_codes(smtp_server: tuple[str, int]) -> None:
    events = Events()
    client = _client(events, smtp_server)
    ok = client.send(b"Subject: x\r\n\r\nbody\r\n", "a@example.test", ["b@example.test"])
    assert ok.ok and ok.accepted_at is not None
    assert events.names() == [
        "connect", "banner", "ehlo", "mail", "rcpt", "data", "transaction"
    ]  # fmt: skip
    events.fired.clear()
    refused = client.send(b"Subject: x\r\n\r\nbody\r\n", "a@example.test", [REJECTED])
    assert not refused.ok and refused.transaction.kind == "550"
    assert events.failed() == {"rcpt": "550", "transaction": "550"}
    client.close()


@pytest.mark.parametrize(
    "message",
    [
        b"Subject: x\r\n\r\nbody\r\n",
        b"Subject: dots\r\n\r\n.hidden line\r\n..two\r\nend",  # RFC 5321 §4.5.2
        b".starts with a dot\r\n\r\n.\r\n",  # a lone dot inside is not end of data
    ],
)
def test_the_server_receives_the_message_byte_for_byte(
    smtp_server: tuple[str, int], message: bytes
) -> None:
    client = _client(Events(), smtp_server)
    assert client.send(message, "a@example.test", ["b@example.test"]).ok
    client.close()
    expected = message if message.endswith(b"\r\n") else message + b"\r\n"
    assert HANDLER.received == [expected]


def test_refused_connection_is_counted_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        events = Events()
        outcome = _client(events, ("127.0.0.1", port)).send(b"x", "a@x.test", ["b@x.test"])
    assert outcome.transaction.kind == "refused"
    assert events.failed() == {"connect": "refused", "transaction": "refused"}


def _bad_server(behaviour: str) -> tuple[tuple[str, int], threading.Event]:
    """A server that hangs after its banner, or resets the connection during DATA."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.sendall(b"220 bad.example.test ESMTP\r\n")
            if behaviour == "hang":
                done.wait(10)
                return
            stream = conn.makefile("rb")
            while line := stream.readline():
                if line.upper().startswith(b"EHLO"):
                    conn.sendall(b"250 bad.example.test\r\n")
                elif line.upper().startswith(b"DATA"):
                    conn.sendall(b"354 go ahead\r\n")
                    stream.readline()
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    return  # close with linger 0: a TCP reset mid-DATA
                else:
                    conn.sendall(b"250 OK\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[:2], done


def test_server_hanging_after_banner_times_out_on_time() -> None:
    address, done = _bad_server("hang")
    events = Events()
    started = time.monotonic()
    outcome = _client(events, address, timeout=0.5).send(b"x", "a@x.test", ["b@x.test"])
    done.set()
    assert time.monotonic() - started < 3
    assert outcome.transaction.kind == "timeout"
    assert events.failed() == {"ehlo": "timeout", "transaction": "timeout"}


def test_reset_mid_data_is_classified() -> None:
    address, _ = _bad_server("reset")
    events = Events()
    body = b"Subject: x\r\n\r\n" + b"y" * 200_000 + b"\r\n"
    outcome = _client(events, address, timeout=2).send(body, "a@x.test", ["b@x.test"])
    assert outcome.transaction.kind == "reset"
    assert events.failed()["data"] == "reset"


def test_a_phase_does_not_begin_after_the_transaction_deadline() -> None:
    """Without gevent nothing interrupts a wait, but the deadline still holds at the next
    phase: the transaction fails as a timeout and the phase is never reported."""
    events = Events()
    meter = Meter(events, "smtp")
    with meter.transaction("transaction", start_ns=time.perf_counter_ns(), timeout=0.05) as tx:
        with meter.phase("banner"):
            time.sleep(0.1)
        with meter.phase("ehlo"):
            pass
    assert (tx.ok, tx.kind) == (False, "timeout")
    assert events.names() == ["banner", "transaction"]
    assert events.fired[-1]["context"]["arrival"] is True


def test_an_arrival_stopped_mid_transaction_is_reported_unfinished() -> None:
    """Locust stops a user by raising GreenletExit (a BaseException) into it: an arrival
    reports its outcome first and the stop goes on; a non-arrival (a watcher's session)
    just ends."""
    for start_ns, expected in ((time.perf_counter_ns(), ["transaction"]), (None, [])):
        events = Events()
        meter = Meter(events, "smtp")
        with (
            pytest.raises(KeyboardInterrupt),
            meter.transaction("transaction", start_ns=start_ns, timeout=5),
        ):
            raise KeyboardInterrupt
        assert events.names() == expected
        assert all(classify(e["exception"]) == "unfinished" for e in events.fired)
