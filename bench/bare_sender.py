"""The ceiling of Python itself: a bare gevent SMTP sender, no Locust, no accounting.

    python bench/bare_sender.py --port 2525 --sessions 10 --size 4096 --duration 5 [--reuse]

``--sessions`` greenlets each send the same message to a sink (MAIL, RCPT, DATA, the body),
on a new connection per message or on one connection each (``--reuse``), and time each
message into one HDR histogram, as little as a measuring sender can do. It prints
``<messages> <seconds>`` for :mod:`bench.generator_vs_smtp_source` to add up over
processes. Run as a script: gevent patches this process's sockets.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import BinaryIO  # noqa: E402

import gevent  # noqa: E402
from hdrh.histogram import HdrHistogram  # noqa: E402

TIMEOUT = None


def reply(file: BinaryIO) -> int:
    line = file.readline()
    while line[3:4] == b"-":  # a multiline reply (EHLO)
        line = file.readline()
    code = int(line[:3])
    if code >= 400:
        raise RuntimeError(f"sink answered {line!r}")
    return code


def write(sock: socket.socket, data: bytes) -> None:
    """``sendall`` without gevent's per-call getsockopt, as maildrill's client writes."""
    view = memoryview(data)
    while view:
        view = view[sock.send(view) :]


def session(port: int, reuse: bool, body: bytes, until: float, hist: HdrHistogram) -> int:
    sent = 0
    clock = time.perf_counter_ns
    while time.perf_counter() < until:
        sock = socket.socket()
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", port))
        file = sock.makefile("rb")
        reply(file)
        write(sock, b"EHLO bare.test\r\n")
        reply(file)
        while time.perf_counter() < until:
            start = clock()
            write(sock, b"MAIL FROM:<a@example.test>\r\n")
            reply(file)
            write(sock, b"RCPT TO:<b@example.test>\r\n")
            reply(file)
            write(sock, b"DATA\r\n")
            reply(file)
            write(sock, body)
            reply(file)
            hist.record_value((clock() - start) // 1000)
            sent += 1
            if not reuse:
                break
        write(sock, b"QUIT\r\n")
        reply(file)
        sock.close()
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    head = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: bare\r\n\r\n"
    body = head + b"x" * max(0, args.size - len(head) - 2) + b"\r\n.\r\n"
    hist = HdrHistogram(1, 3_600_000_000, 3)
    started = time.perf_counter()
    until = started + args.duration
    jobs = [
        gevent.spawn(session, args.port, args.reuse, body, until, hist)
        for _ in range(args.sessions)
    ]
    gevent.joinall(jobs, raise_error=True)
    print(sum(job.value for job in jobs), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
