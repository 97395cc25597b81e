"""The POP3 client closes what it opened, also when the server's greeting is wrong."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from maildrill.clients.nodes import NodeCycle
from maildrill.clients.pop3 import Pop3Client


class GarbageGreeting:
    """A server whose greeting is not ``+OK`` (RFC 1939 §4); it notes whether the client
    then closed the connection (EOF within 2 s) or left it open."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.listener.getsockname()
        self.closed_by_client = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.listener.settimeout(5)
        with self.listener, self.listener.accept()[0] as conn:
            conn.sendall(b"HELLO this is not POP3\r\n")
            conn.settimeout(2)
            try:
                while conn.recv(1024):
                    pass
            except TimeoutError:
                return
            self.closed_by_client.set()


@pytest.fixture
def server() -> Iterator[GarbageGreeting]:
    server = GarbageGreeting()
    server.thread.start()
    yield server
    server.thread.join(6)


def test_a_bad_greeting_leaves_no_socket_open(server: GarbageGreeting) -> None:
    fired: list[dict[str, object]] = []
    client = Pop3Client(lambda **e: fired.append(e), NodeCycle("127.0.0.1", [server.address]))
    with client.meter.transaction("session") as tx:
        client.connect()
    assert not tx.ok and tx.kind == "protocol", tx
    assert [e["name"] for e in fired] == ["connect", "session"]
    # the client still exists (a watcher keeps it for the next session): the socket must
    # have been closed when the greeting failed, not whenever the garbage collector runs
    assert server.closed_by_client.wait(3), "the client left the connection open"
    assert client.client is None
