"""Benchmark: how many IMAP IDLE sessions one maildrill process holds, and memory per session.

    python bench/imap_idle.py --sessions 10000 --ramp 500

The client is maildrill's own :class:`~maildrill.clients.imap.ImapClient` (imapclient under
gevent, one greenlet per session: connect, LOGIN, SELECT, then IDLE until the end), ramped
up ``--ramp`` sessions per second, as FACTS.md advises (10,000 at once stalled a probe).
The server is a small asyncio IMAP stub in a child process, so the figures are the
harness's, not a mail server's: sessions held, connect/login p99 from maildrill's own
histograms, the client's RSS growth per session. The soft fd limit is raised to the hard
one (a session is one socket).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time


def stub_server(port: int, ready: multiprocessing.synchronize.Event) -> None:
    import asyncio

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 IDLE] stub\r\n")
        try:
            while line := await reader.readline():
                tag, _, rest = line.decode().strip().partition(" ")
                cmd = rest.split(" ", 1)[0].upper()
                if cmd == "CAPABILITY":
                    writer.write(b"* CAPABILITY IMAP4rev1 IDLE\r\n")
                elif cmd == "SELECT":
                    writer.write(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n")
                elif cmd == "IDLE":
                    writer.write(b"+ idling\r\n")
                    await writer.drain()
                    await reader.readline()  # DONE
                elif cmd == "LOGOUT":
                    writer.write(b"* BYE\r\n" + tag.encode() + b" OK bye\r\n")
                    await writer.drain()
                    break
                writer.write(tag.encode() + b" OK done\r\n")
                await writer.drain()
        except (ConnectionError, UnicodeDecodeError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", port, backlog=4096)
        ready.set()
        async with server:
            await server.serve_forever()

    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    asyncio.run(main())


def rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def client(args: argparse.Namespace, port: int) -> None:
    from gevent import monkey

    monkey.patch_all()
    import gevent

    from maildrill.clients.events import Gauge
    from maildrill.clients.imap import CONNECTIONS, ImapClient
    from maildrill.clients.nodes import NodeCycle
    from maildrill.load.hdr import Recorder

    recorder, failures = Recorder(), {}

    def fire(request_type: str, name: str, exception: object = None, **kw: object) -> None:
        if exception is None:
            recorder.record(request_type, name, kw["context"]["us"])  # type: ignore[index]
        else:
            failures[name] = failures.get(name, 0) + 1

    nodes = NodeCycle("127.0.0.1", [("127.0.0.1", port)])
    stop = gevent.event.Event()

    def hold(i: int) -> None:
        imap = ImapClient(fire, nodes, timeout=120)
        with imap.meter.transaction("session"):
            imap.connect()
            imap.login(f"user{i}", "pw")
            imap.select("INBOX")
            while not stop.is_set():
                imap.idle(30)
            imap.logout()

    assert isinstance(CONNECTIONS, Gauge)
    base = rss_kb()
    t0 = time.monotonic()
    greenlets = []
    for i in range(args.sessions):
        greenlets.append(gevent.spawn(hold, i))
        if i % args.ramp == args.ramp - 1:
            gevent.sleep(1.0)
            print(
                f"  t={time.monotonic() - t0:5.1f}s spawned {i + 1} open {CONNECTIONS.value}",
                flush=True,
            )
    deadline = time.monotonic() + 60
    while (
        CONNECTIONS.value + sum(failures.get(k, 0) for k in ("connect", "tls", "login", "select"))
        < args.sessions
        and time.monotonic() < deadline
    ):
        gevent.sleep(0.5)
    held = CONNECTIONS.value
    gevent.sleep(args.hold)
    held_after = CONNECTIONS.value
    grown = rss_kb() - base
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs; fd limit "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)}"
    )
    print(
        f"sessions asked {args.sessions}, open after ramp {held}, still open after "
        f"{args.hold:g} s of IDLE {held_after}; failures {failures}"
    )
    print(f"client RSS growth {grown / 1024:.1f} MB = {grown / max(1, held):.1f} KB per session")
    for name in ("connect", "login", "select"):
        s = recorder.summary("imap", name)
        print(
            f"  imap {name}: n={s.count} p50 {s.p50_us / 1000:.1f} ms p99 {s.p99_us / 1000:.1f} ms "
            f"max {s.max_us / 1000:.1f} ms"
        )
    stop.set()
    gevent.joinall(greenlets, timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--ramp", type=int, default=500, help="new sessions per second")
    parser.add_argument("--hold", type=float, default=10, help="seconds to hold them in IDLE")
    parser.add_argument("--port", type=int, default=21430)
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=stub_server, args=(args.port, ready), daemon=True)
    server.start()
    ready.wait(10)
    try:
        client(args, args.port)
    finally:
        server.terminate()
        server.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
