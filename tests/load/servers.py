"""Tiny SMTP servers on loopback for load tests: a counting sink and misbehaving ones.

Each runs in threads of the test process (real sockets, as aiosmtpd's tests do) and counts
what it saw, so a test can hold the load engine's figures against the server's::

    with smtp_server("sink") as server:
        target = write_target(tmp_path, server.port)
        ...
        server.messages          # messages the server answered 250 after DATA
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BEHAVIOURS", "Server", "smtp_server", "write_target"]

# RFC 5321 §4.2: every reply starts with a three-digit code; these servers break that,
# or the connection, on purpose
BEHAVIOURS = (
    "sink",
    "hang_after_banner",
    "reset_in_data",
    "garbage",
    "megabyte_line",
    "picky",
    "trickle_banner",
    "stall",
    "slow_replies",
)
MEGABYTE = 1 << 20
# "picky" is a well-behaved sink with limits: it refuses one mailbox at RCPT (RFC 5321
# §3.3: the transaction goes on for the others) and, advertising SIZE, a declared size
# over the limit at MAIL (RFC 1870 §6.1)
REFUSED_MAILBOX = b"user1@"
SIZE_LIMIT = 100_000
BANNER = b"220 test.invalid ESMTP"
# "trickle_banner" sends a long greeting one byte per second, then behaves as a sink: every
# read gets data well within any per-read timeout, the whole greeting takes over a minute
TRICKLED_BANNER = BANNER + b" greeting you slowly, one byte a second, as a tarpit does"
TRICKLE_S = 1.0
# "slow_replies" takes this long over each 250 to MAIL and RCPT, as a slow policy check
# (greylisting, a milter, a DNS lookup) does: a transaction is in flight for seconds
SLOW_REPLY_S = 1.5


@dataclass
class Server:
    behaviour: str
    port: int = 0
    messages: int = 0
    connections: int = 0
    refused: int = 0  # RCPTs refused ("picky")
    # "stall": every reply due from stall_at_s after the first connection until stall_s
    # later is held until the stall ends, as a server pausing (GC, fsync, failover) would
    stall_at_s: float = 5.0
    stall_s: float = 3.0
    first_seen: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        state = self.server.state
        with state.lock:
            state.connections += 1
            state.first_seen = state.first_seen or time.monotonic()
        with suppress(OSError):  # the client hung up: its business
            self._converse(state)

    def _reply(self, line: bytes) -> None:
        state = self.server.state
        if state.behaviour == "stall":
            begin = state.first_seen + state.stall_at_s
            wait = begin + state.stall_s - time.monotonic()
            if time.monotonic() >= begin and wait > 0:
                state.stop.wait(wait)
        elif state.behaviour == "slow_replies" and line == b"250 OK":
            state.stop.wait(SLOW_REPLY_S)
        self.wfile.write(line + b"\r\n")
        self.wfile.flush()

    def _trickle(self, line: bytes) -> None:
        for byte in line + b"\r\n":
            if self.server.state.stop.wait(TRICKLE_S):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def _converse(self, state: Server) -> None:
        behaviour = state.behaviour
        if behaviour == "trickle_banner":
            self._trickle(TRICKLED_BANNER)
        else:
            self._reply(BANNER)
        if behaviour == "hang_after_banner":
            state.stop.wait(30)  # bounded: the test ends long before
            return
        while not state.stop.is_set():
            line = self.rfile.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if behaviour == "garbage":
                self._reply(b"\x00\xff?? not smtp at all")
            elif verb == b"EHLO" and behaviour == "megabyte_line":
                self._reply(b"250-" + b"x" * MEGABYTE)
                self._reply(b"250 OK")
            elif verb == b"EHLO" and behaviour == "picky":
                self._reply(b"250-test.invalid\r\n250-SIZE %d\r\n250 PIPELINING" % SIZE_LIMIT)
            elif verb == b"EHLO":
                self._reply(b"250-test.invalid\r\n250 PIPELINING")
            elif verb == b"MAIL" and behaviour == "picky" and _declared_size(line) > SIZE_LIMIT:
                self._reply(b"552 5.3.4 Message size exceeds fixed limit")
            elif verb == b"RCPT" and behaviour == "picky" and REFUSED_MAILBOX in line.lower():
                with state.lock:
                    state.refused += 1
                self._reply(b"550 5.1.1 No such user")
            elif verb == b"DATA":
                self._reply(b"354 go ahead")
                if behaviour == "reset_in_data":
                    self.rfile.read(100)
                    self._reset()
                    return
                while self.rfile.readline(MEGABYTE) not in (b".\r\n", b""):
                    pass
                with state.lock:
                    state.messages += 1
                self._reply(b"250 2.0.0 queued")
            elif verb == b"QUIT":
                self._reply(b"221 bye")
                return
            else:
                self._reply(b"250 OK")

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST, as a crashing server process would
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


def _declared_size(mail_from: bytes) -> int:
    for param in mail_from.split()[2:]:
        if param.upper().startswith(b"SIZE="):
            return int(param[5:])
    return 0


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    state: Server


@contextmanager
def smtp_server(
    behaviour: str, *, port: int = 0, stall_at_s: float = 5.0, stall_s: float = 3.0
) -> Iterator[Server]:
    state = Server(behaviour, stall_at_s=stall_at_s, stall_s=stall_s)
    server = _TCPServer(("127.0.0.1", port), _Handler)
    server.state = state
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_target(folder: Path, port: int, *, max_rate: float = 500) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "target.toml"
    (folder / "passwords").write_text("not-used-by-these-servers\n", encoding="utf-8")
    path.write_text(
        f"""name = "test-server"
domain = "example.test"
policy = "seed"

[endpoints.smtp]
url = "smtp://127.0.0.1:{port}"

[accounts]
pattern = "user{{n}}"
count = 5
password_file = "passwords"

[safety]
allowed_networks = ["127.0.0.0/8"]
max_rate = {max_rate}
""",
        encoding="utf-8",
    )
    return path
