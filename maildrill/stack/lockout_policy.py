"""S17 (fail2ban ``maxretry = 3``) for the stack: a Dovecot authentication policy server.

Usage (started by ``maildrill stack up``, one process, stopped by its pid)::

    python -m maildrill.stack.lockout_policy --listen 127.0.1.1:2894 --max-retry 3

Dovecot asks it before every login (``command=allow``) and tells it the outcome after
(``command=report``), for IMAP, POP3 and Postfix's SASL alike, as fail2ban watches
smtp/ssmtp/imap/pop3. After ``--max-retry`` failures within ``--find-time`` seconds an
address is refused for ``--ban-time`` seconds, even with the right password. 127.0.0.1 is
never banned (fail2ban's ``ignoreip``): the harness's other checks log in from there.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["Lockout", "main"]

IGNORE = frozenset({"127.0.0.1"})


class Lockout:
    """Failures per address and the bans they earn (thread-safe)."""

    def __init__(self, max_retry: int, find_time: float, ban_time: float) -> None:
        self.max_retry, self.find_time, self.ban_time = max_retry, find_time, ban_time
        self._failures: dict[str, list[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def allowed(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._banned_until.get(address, 0.0) <= now

    def report(self, address: str, success: bool, now: float | None = None) -> None:
        if address in IGNORE or success:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if now - t < self.find_time]
            recent.append(now)
            self._failures[address] = recent
            if len(recent) >= self.max_retry:
                self._banned_until[address] = now + self.ban_time
                self._failures[address] = []


def _handler(lockout: Lockout) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            command = parse_qs(urlsplit(self.path).query).get("command", [""])[0]
            length = int(self.headers.get("Content-Length", "0"))
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                request = {}
            address = str(request.get("remote", ""))
            status, msg = 0, ""
            if command == "allow" and not lockout.allowed(address):
                status, msg = -1, "Too many failed logins from your address; try again later"
            elif command == "report":
                lockout.report(address, bool(request.get("success")))
            body = json.dumps({"status": status, "msg": msg}).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per login would drown the log

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", required=True, help="host:port")
    parser.add_argument("--max-retry", type=int, default=3)
    parser.add_argument("--find-time", type=float, default=600.0)
    parser.add_argument("--ban-time", type=float, default=60.0)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    lockout = Lockout(args.max_retry, args.find_time, args.ban_time)
    with ThreadingHTTPServer((host, int(port)), _handler(lockout)) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
