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

__all__ = ["ACCOUNT_PATTERN", "JUNK", "Store"]

ACCOUNT_PATTERN = "user{n:04d}"
JUNK = "Junk"
_SUBDIRS = ("tmp", "new", "cur")


class Store:
    """The accounts and their Maildirs under ``root``."""

    def __init__(self, root: Path, domain: str, *, count: int, password: str) -> None:
        self.root = root
        self.domain = domain.lower()
        self.password = password  # never logged or printed
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

    def check_password(self, login: str, password: str) -> str | None:
        """The account's local part if ``login``/``password`` are right, else None."""
        local = self.local_part(login)
        ok = hmac.compare_digest(password.encode(), self.password.encode())
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
