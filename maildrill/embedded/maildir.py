"""The lab's mail store: one Maildir++ per account, shared by SMTP, IMAP (pymap) and POP3.

Delivery follows the Maildir protocol: write the file under ``tmp/``, then rename it into
``new/``; a reader never sees half a message. The Junk folder is ``.Junk/`` (Maildir++),
which is what pymap's ``++`` layout lists as ``Junk``.

Usage::

    store = Store(Path("/tmp/lab/mail"), "example.test", count=20, password="s3cret")
    store.deliver("user0001", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
    store.deliver("user0001", raw, folder="Junk")
"""

from __future__ import annotations

import hmac
import itertools
import os
import socket
import time
from pathlib import Path

__all__ = ["ACCOUNT_PATTERN", "JUNK", "Lockout", "Store"]

ACCOUNT_PATTERN = "user{n:04d}"
JUNK = "Junk"
_SUBDIRS = ("tmp", "new", "cur")


class Lockout:
    """Seed S17 (fail2ban ``maxretry = 3``): a source address with ``max_failures`` failed
    logins within ``findtime`` seconds is refused every login for ``bantime`` seconds, on
    every protocol. Addresses in ``ignore`` are exempt, like fail2ban's default
    ``ignoreip = 127.0.0.1/8``, but narrower: only 127.0.0.1, the lab's own clients.

    Usage::

        lockout = Lockout()
        if lockout.banned(ip): refuse()
        lockout.record(ip, ok=False)
    """

    def __init__(
        self,
        max_failures: int = 3,
        findtime: float = 600.0,
        bantime: float = 600.0,
        ignore: frozenset[str] = frozenset({"127.0.0.1"}),
    ) -> None:
        self.max_failures = max_failures
        self.findtime = findtime
        self.bantime = bantime
        self.ignore = ignore
        self._failures: dict[str, list[float]] = {}
        self._banned_until: dict[str, float] = {}

    def banned(self, ip: str) -> bool:
        return self._banned_until.get(ip, 0.0) > time.monotonic()

    def record(self, ip: str, *, ok: bool) -> None:
        if ok or ip in self.ignore:
            return
        now = time.monotonic()
        recent = [t for t in self._failures.get(ip, []) if now - t < self.findtime]
        recent.append(now)
        self._failures[ip] = recent
        if len(recent) >= self.max_failures:
            self._banned_until[ip] = now + self.bantime
            self._failures[ip] = []


class Store:
    """The accounts and their Maildirs under ``root``."""

    def __init__(self, root: Path, domain: str, *, count: int, password: str) -> None:
        self.root = root
        self.domain = domain.lower()
        self.password = password  # never logged or printed
        self.lockout = Lockout()
        self.accounts = frozenset(ACCOUNT_PATTERN.format(n=n) for n in range(1, count + 1))
        self._seq = itertools.count()
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")
        for local in sorted(self.accounts):
            for sub in _SUBDIRS:
                (self.maildir(local) / sub).mkdir(parents=True, exist_ok=True)
                (self.maildir(local) / f".{JUNK}" / sub).mkdir(parents=True, exist_ok=True)
            # Maildir++ marks a sub-folder with this empty file (Courier/Dovecot convention)
            (self.maildir(local) / f".{JUNK}" / "maildirfolder").touch()

    def maildir(self, local: str) -> Path:
        return self.root / local

    def local_part(self, address_or_login: str) -> str | None:
        """The account a login name or a recipient address names, or None if none."""
        name = address_or_login.strip().lower()
        local, at, domain = name.rpartition("@")
        if not at:
            local, domain = name, self.domain
        if domain != self.domain or local not in self.accounts:
            return None
        return local

    def is_local_domain(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() == self.domain

    def check_password(self, login: str, password: str, ip: str) -> str | None:
        """The account's local part if ``login``/``password`` are right and ``ip`` is not
        locked out (S17), else None. Failures count towards the lockout."""
        if self.lockout.banned(ip):
            return None
        local = self.local_part(login)
        ok = hmac.compare_digest(password.encode(), self.password.encode())
        self.lockout.record(ip, ok=local is not None and ok)
        return local if local is not None and ok else None

    def deliver(self, local: str, message: bytes, folder: str | None = None) -> Path:
        """Write ``message`` into the account's INBOX (or ``folder``) and return its path."""
        base = self.maildir(local) if folder is None else self.maildir(local) / f".{folder}"
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._seq)}.{self._host}"
        tmp = base / "tmp" / name
        with open(tmp, "wb") as fh:
            fh.write(message)
        final = base / "new" / name
        os.rename(tmp, final)
        return final
