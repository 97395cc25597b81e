"""Benchmark: maildrill's SMTP generator against Postfix's smtp-source, both into smtp-sink.

    sudo python bench/generator_vs_smtp_source.py --messages 20000 --size 4096 --sessions 10

Same sink, same message size, same concurrency (smtp-source -s N; maildrill --users N),
once with a new connection per message and once reusing connections (smtp-source -d;
maildrill --per-session 1000). maildrill is asked for far more than it can send (an open
model whose schedule falls behind), so its accepted rate is its ceiling. ``--processes``
also runs maildrill with 2 Locust workers (the scale-out figure), and ``--one-worker`` with
a master and one worker, so that 2 workers can be set against 1 with a master in both;
``--message-profile default`` has maildrill send the realistic mix instead (smtp-source
still sends --size).
Last, ``bench/bare_sender.py`` (a gevent loop that only sends and times each message, in as
many processes) shows how fast Python itself can go on this box against the same sink.
smtp-sink runs as ``nobody`` (it refuses to run as root without -u).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from maildrill.load import Master, run_load

SINK_BACKLOG = "1024"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_target(folder: Path, port: int) -> Path:
    (folder / "passwords").write_text("unused\n")
    path = folder / "target.toml"
    path.write_text(
        f'name = "smtp-sink"\ndomain = "example.test"\npolicy = "seed"\n'
        f'[endpoints.smtp]\nurl = "smtp://127.0.0.1:{port}"\n'
        f'[accounts]\npattern = "user{{n}}"\ncount = 10\npassword_file = "passwords"\n'
        f'[safety]\nallowed_networks = ["127.0.0.0/8"]\nmax_rate = 100000\n'
    )
    return path


def smtp_source(port: int, messages: int, size: int, sessions: int, reuse: bool) -> float:
    cmd = ["smtp-source", "-s", str(sessions), "-l", str(size), "-m", str(messages)]
    cmd += ["-f", "a@example.test", "-t", "b@example.test"]
    if reuse:
        cmd.append("-d")
    t0 = time.perf_counter()
    subprocess.run([*cmd, f"127.0.0.1:{port}"], check=True)
    return messages / (time.perf_counter() - t0)


def maildrill(
    target: Path,
    out: Path,
    args: argparse.Namespace,
    reuse: bool,
    procs: int,
    *,
    one_worker: bool = False,
) -> str:
    """``one_worker``: a master and one ``maildrill load --worker`` process, the like of
    ``--processes 2``'s master and two workers (a single process has no master at all)."""
    helper = None
    master = None
    if one_worker:
        port = free_port()
        master = Master(workers=1, bind_host="127.0.0.1", bind_port=port, wait_s=30)
        helper = subprocess.Popen(
            [sys.executable, "-m", "maildrill", "load", "--worker", "--master-host", "127.0.0.1",
             "--master-port", str(port), "--target", str(target), "--out", str(out / "worker")],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    load = run_load(
        target,
        "smtp_inbound",
        duration_s=args.duration,
        rate=50_000,
        users=args.sessions,
        processes=procs,
        message_size=args.size if args.message_profile == "fixed" else None,
        message_profile=args.message_profile,
        per_session=1000 if reuse else 1,
        out_dir=out,
        master=master,
    )
    if helper is not None:
        helper.wait(60)
    acc = load.accounting
    assert acc is not None
    sending = min(load.duration_s, args.duration)
    tx = next(p for p in load.phases if p.name == "transaction")
    # messages, not copies: a profile with several recipients sends more copies than messages
    messages = tx.count - tx.failures
    copies = f", {acc.accepted} copies" if acc.accepted != messages else ""
    return (
        f"{messages / sending:8.0f} msg/s  ({messages} accepted{copies} in {sending:.1f} s, "
        f"{sum(acc.rejected.values())} failed; data p50 "
        f"{next(p for p in load.phases if p.name == 'data').latency.p50_us} µs; "
        f"transaction count {tx.count})"
    )


def bare(port: int, args: argparse.Namespace, reuse: bool, procs: int) -> str:
    """``procs`` bare gevent senders at once (bench/bare_sender.py): Python's own ceiling."""
    cmd = [sys.executable, str(Path(__file__).with_name("bare_sender.py")), "--port", str(port)]
    cmd += ["--sessions", str(args.sessions), "--size", str(args.size)]
    cmd += ["--duration", str(args.duration), *(["--reuse"] if reuse else [])]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    outputs = [run.communicate(timeout=args.duration + 60)[0].split() for run in runs]
    if any(run.returncode for run in runs):
        raise SystemExit("bare_sender.py failed")
    rate = sum(int(sent) / float(seconds) for sent, seconds in outputs)
    return f"{rate:8.0f} msg/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 2])
    parser.add_argument(
        "--one-worker",
        action="store_true",
        help="also run a master with one --worker: with --processes 2, workers 2 vs 1",
    )
    parser.add_argument(
        "--message-profile",
        default="fixed",
        help="maildrill's messages (smtp-source always sends --size): fixed (default), "
        "default or FILE.toml, to see what a realistic mix costs the generator",
    )
    args = parser.parse_args()
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", SINK_BACKLOG])
    time.sleep(0.5)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            target = write_target(folder, port)
            print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
            print(f"size {args.size} B, {args.sessions} sessions/users, sink smtp-sink")
            for reuse in (False, True):
                label = "reused connections" if reuse else "new connection per message"
                rate = smtp_source(port, args.messages, args.size, args.sessions, reuse)
                print(f"[{label}] smtp-source{' -d' if reuse else ''}: {rate:8.0f} msg/s")
                for procs in args.processes:
                    line = maildrill(target, folder / f"out-{reuse}-{procs}", args, reuse, procs)
                    print(f"[{label}] maildrill --processes {procs}: {line}", flush=True)
                if args.one_worker:
                    out = folder / f"out-{reuse}-master"
                    line = maildrill(target, out, args, reuse, 1, one_worker=True)
                    print(f"[{label}] maildrill --master + 1 --worker: {line}", flush=True)
                for procs in args.processes:
                    line = bare(port, args, reuse, procs)
                    print(f"[{label}] bare gevent sender x{procs}: {line}", flush=True)
    finally:
        sink.terminate()
        sink.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
