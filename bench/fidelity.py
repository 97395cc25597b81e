"""Benchmark: does maildrill report the latency a server really had? (p50/p99 within 1 %)

    python bench/fidelity.py --duration 20

A loopback SMTP server delays each reply to MAIL FROM by a draw from a known distribution
(log-normal, median 20 ms, sigma 0.6: p99 ≈ 81 ms) and records the delay it applied,
measured from reading the command to writing the reply. maildrill's ``smtp mail`` phase
(one command, one reply; HDR, 3 significant digits) is compared with that truth, in the
open model (paced arrivals below capacity) and the closed model (users back to back);
Locust's own percentiles for the same events, from its summary table, are printed beside
them. The phase also holds one loopback round trip (tens of µs), so the question is
whether everything else the harness adds stays under 1 %.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import socketserver
import sys
import tempfile
import threading
import time
from pathlib import Path

from maildrill.load import run_load

MEDIAN_S, SIGMA = 0.020, 0.6


class Truth:
    def __init__(self) -> None:
        self.delays_us: list[int] = []
        self.lock = threading.Lock()
        self.rng = random.Random(7)

    def draw(self) -> float:
        with self.lock:
            return self.rng.lognormvariate(0, SIGMA) * MEDIAN_S


class Handler(socketserver.StreamRequestHandler):
    server: Server

    def handle(self) -> None:
        truth = self.server.truth
        self.wfile.write(b"220 fidelity ESMTP\r\n")
        while line := self.rfile.readline(4096):
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-fidelity\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                t0 = time.perf_counter()
                time.sleep(truth.draw())
                self.wfile.write(b"250 ok\r\n")
                self.wfile.flush()
                applied = int((time.perf_counter() - t0) * 1e6)
                with truth.lock:
                    truth.delays_us.append(applied)
            elif verb == b"DATA":
                self.wfile.write(b"354 go\r\n")
                self.wfile.flush()
                while self.rfile.readline(65536) not in (b".\r\n", b""):
                    pass
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    truth: Truth


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))])


def locust_percentiles(log: Path) -> tuple[float, float] | None:
    """Locust's own p50 and p99 (ms) of smtp mail, from its summary table."""
    for line in log.read_text(errors="replace").splitlines():
        cols = line.split()
        if len(cols) > 12 and cols[0] == "smtp" and cols[1] == "mail" and "|" not in line:
            nums = [c for c in cols[2:] if re.fullmatch(r"[0-9.]+", c)]
            if len(nums) >= 11:  # 50 66 75 80 90 95 98 99 99.9 99.99 100 reqs
                return float(nums[0]), float(nums[7])
    return None


def run(model: str, args: argparse.Namespace, folder: Path, port: int, truth: Truth) -> None:
    truth.delays_us.clear()
    rate = args.rate if model == "open" else 50_000
    out = folder / model
    load = run_load(
        folder / "target.toml",
        "smtp_inbound",
        duration_s=args.duration,
        rate=rate,
        users=args.users,
        per_session=1000,
        out_dir=out,
    )
    data = next(p for p in load.phases if p.name == "mail")
    true50, true99 = pct(truth.delays_us, 50), pct(truth.delays_us, 99)
    got50, got99 = data.latency.p50_us, data.latency.p99_us
    lp = locust_percentiles(out / "locust.log")
    print(
        f"{model:6} model, {len(truth.delays_us)} replies (rate {rate:g}/s, {args.users} users):\n"
        f"  truth     p50 {true50 / 1000:8.2f} ms  p99 {true99 / 1000:8.2f} ms\n"
        f"  maildrill p50 {got50 / 1000:8.2f} ms  p99 {got99 / 1000:8.2f} ms  "
        f"(error {100 * (got50 - true50) / true50:+.2f} % / "
        f"{100 * (got99 - true99) / true99:+.2f} %)"
    )
    if lp is not None:
        print(
            f"  locust    p50 {lp[0]:8.2f} ms  p99 {lp[1]:8.2f} ms  "
            f"(error {100 * (lp[0] * 1000 - true50) / true50:+.2f} % / "
            f"{100 * (lp[1] * 1000 - true99) / true99:+.2f} %)",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    truth = Truth()
    server = Server(("127.0.0.1", 0), Handler)
    server.truth = truth
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "passwords").write_text("unused\n")
        (folder / "target.toml").write_text(
            f'name = "fidelity"\ndomain = "example.test"\npolicy = "seed"\n'
            f'[endpoints.smtp]\nurl = "smtp://127.0.0.1:{port}"\n'
            f'[accounts]\npattern = "user{{n}}"\ncount = 10\npassword_file = "passwords"\n'
            f'[safety]\nallowed_networks = ["127.0.0.0/8"]\nmax_rate = 100000\n'
        )
        for model in ("open", "closed"):
            run(model, args, folder, port, truth)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
