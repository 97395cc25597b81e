"""Full-chain accounting (seed S3): every copy sent is accepted, delivered, lost,
unobserved, duplicated, corrupted, misdelivered or rejected, and its delivery latency is
measured.

Each message carries a unique Message-ID and the SHA-256 of its body. A message to several
recipients is several copies, one per ``(Message-ID, recipient)``, each accounted for on its
own: a recipient refused at RCPT is one rejected copy while the others go on. The sender
records ``(message_id, body_hash, time of the 250, accepted recipients)``; the watchers
record each sighting with the mailbox's address and the hash of the body they fetched.
Records may arrive in either order (workers report to the master every second), so
sightings of an unknown copy wait until its sent record comes; one still unmatched at the
end, of a message accepted for other recipients, is a *misdelivered* copy.

A copy never seen is *lost* only if its mailbox could be looked at: the watchers report
each look (:meth:`Ledger.watcher_looked`) and each failure to look
(:meth:`Ledger.watcher_failed`), and a copy for a mailbox whose watcher was failing when
the run ended is *unobserved* — its fate is unknown, which says nothing about the server::

    ledger = Ledger()
    ledger.accepted("<id>", "ab12…", accepted_at=t0, recipients=["a@x", "b@x", "c@x"])
    ledger.attempt_failed("550")                 # a fourth recipient refused at RCPT
    ledger.sighting("<id>", "ab12…", seen_at=t1, recipient="a@x")
    ledger.watcher_failed("c@x", "login: [AUTHENTICATIONFAILED] Invalid credentials")
    ledger.accounting(final=True)  # sent 4, delivered 1, lost 1, unobserved 1, rejected 550: 1
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from typing import Any

from hdrh.histogram import HdrHistogram

from maildrill.load.hdr import HIGHEST_US, new_histogram
from maildrill.results import Accounting

__all__ = [
    "PREPOPULATED_RUN",
    "Ledger",
    "body_hash",
    "header_date",
    "make_message",
    "of_run",
    "parse_message",
    "unique_token",
]


def body_hash(body: bytes) -> str:
    """Hash of a body, insensitive to CRLF/LF and trailing newlines (stores may convert)."""
    return hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip(b"\n")).hexdigest()


def make_message(
    run_id: str, sender: str, rcpt: str | Sequence[str], size: int = 2048
) -> tuple[str, bytes, str]:
    """A unique text/plain test message: (Message-ID, bytes, body hash). The raw-rate
    message; :mod:`maildrill.load.message` draws the others from a profile.

    It is built on the generator's hot path, thousands of times a second, so the body is a
    filler cached per size followed by one line unique to the message, and its hash
    continues a cached hash of the filler rather than hashing kilobytes each time::

        message_id, raw, digest = make_message("run1", "a@x.test", "b@x.test", 4096)
        digest == body_hash(raw.partition(b"\r\n\r\n")[2])     # True
    """
    token = unique_token()
    message_id = f"<{run_id}.{token}@maildrill.test>"
    filler, filler_hash = _filler(size)
    line = (token * 3)[:76].encode("ascii")
    hasher = filler_hash.copy()
    hasher.update(line)  # body_hash drops the last line end
    digest = hasher.hexdigest()
    to = f"<{rcpt}>" if isinstance(rcpt, str) else ",\r\n ".join(f"<{r}>" for r in rcpt)
    head = (
        f"From: <{sender}>\r\nTo: {to}\r\nSubject: maildrill load {token[-8:]}\r\n"
        f"Date: {header_date()}\r\nMessage-ID: {message_id}\r\n"
        f"X-Maildrill-Hash: {digest}\r\n\r\n"
    ).encode("ascii")
    return message_id, b"".join((head, filler, line, b"\r\n")), digest


FILLER_LINE = b"maildrill load test message: filler text of a fixed size, one line of 76 ch"


@lru_cache(maxsize=32)
def _filler(size: int) -> tuple[bytes, Any]:
    """The lines before the unique one (78 bytes each, as many as ``size`` holds but one),
    and the SHA-256 state of their LF form."""
    filler = (FILLER_LINE + b"\r\n") * (max(1, size // (len(FILLER_LINE) + 2)) - 1)
    return filler, hashlib.sha256(filler.replace(b"\r\n", b"\n"))


_prefix = uuid.uuid4().hex[:16]
_serial = itertools.count()


def _new_prefix() -> None:
    global _prefix
    _prefix = uuid.uuid4().hex[:16]


os.register_at_fork(after_in_child=_new_prefix)  # a forked worker must not repeat its parent


def unique_token() -> str:
    """32 hex digits unique to this message: a random prefix per process and a counter,
    much cheaper than a uuid4 per message."""
    return f"{_prefix}{next(_serial) & 0xFFFFFFFFFFFFFFFF:016x}"


_date_cache: tuple[int, str] = (0, "")


def header_date() -> str:
    """The Date: header of this second (RFC 5322 §3.3), formatted once a second."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second))
    return _date_cache[1]


PREPOPULATED_RUN = "maildrill-prepopulate"  # run id of --prepopulate's messages


def of_run(message_id: str, run_id: str) -> bool:
    """A message this run sent, as opposed to another run's (an interrupted one, or one
    going on at the same time), a pre-populated one or mail that is not maildrill's: the
    watchers read in full, account for and delete only these::

        of_run("<4f2a9c.0123@maildrill.test>", "4f2a9c")      # True
        of_run("<maildrill-prepopulate.1@maildrill.test>", "4f2a9c")   # False
    """
    return message_id.startswith(f"<{run_id}.") and message_id.endswith("@maildrill.test>")


def parse_message(raw: bytes) -> tuple[str | None, str]:
    """(Message-ID, body hash) of a fetched message; the ID is None if there is none."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = raw.partition(b"\n\n")
    message_id = None
    for line in head.splitlines():
        if line[:11].lower() == b"message-id:":
            message_id = line[11:].strip().decode("ascii", "replace")
            break
    return message_id, body_hash(body)


@dataclass
class _Sent:
    digest: str
    accepted_at: float
    seen: int = 0
    corrupted: bool = False


Copy = tuple[str, str]  # (Message-ID, recipient)


@dataclass
class Ledger:
    sent: int = 0  # copies
    transactions: int = 0  # messages (SMTP transactions) attempted
    rejected: Counter[str] = field(default_factory=Counter)
    messages: dict[Copy, _Sent] = field(default_factory=dict)
    orphans: dict[Copy, list[tuple[str, float]]] = field(default_factory=dict)
    delivery: HdrHistogram = field(default_factory=new_histogram)
    delivered_per_second: Counter[int] = field(default_factory=Counter)
    # called with (accepted_at, delivery µs) at each first sighting: per-second histograms
    on_delivery: Callable[[float, int], None] | None = None
    blind: dict[str, str] = field(default_factory=dict)  # mailbox -> why it cannot be seen
    # mailbox -> when its newest complete look listed it: mail delivered before then was seen
    looked_as_of: dict[str, float] = field(default_factory=dict)
    watched: set[str] = field(default_factory=set)  # mailboxes a watcher looks at
    first_seen_last: float = 0.0  # the newest first sighting of an accepted copy

    def transaction(self) -> None:
        """One message attempted, whatever became of its copies."""
        self.transactions += 1

    def attempt_failed(self, kind: str, copies: int = 1) -> None:
        """``copies`` copies rejected (reply code) or failed (error kind) before the 250."""
        self.sent += copies
        self.rejected[kind] += copies

    def accepted(
        self,
        message_id: str,
        digest: str,
        accepted_at: float,
        recipients: Sequence[str] = ("",),
    ) -> None:
        """The 250 after DATA: one accepted copy per recipient the server took at RCPT."""
        for rcpt in recipients:
            self.sent += 1
            key = (message_id, rcpt)
            entry = self.messages[key] = _Sent(digest, accepted_at)
            for seen_digest, seen_at in self.orphans.pop(key, []):
                self._see(entry, seen_digest, seen_at)

    def sighting(
        self, message_id: str, digest: str, seen_at: float | None = None, recipient: str = ""
    ) -> None:
        """A watcher saw ``message_id`` in ``recipient``'s mailbox."""
        seen_at = time.time() if seen_at is None else seen_at
        key = (message_id, recipient)
        entry = self.messages.get(key)
        if entry is None:
            self.orphans.setdefault(key, []).append((digest, seen_at))
        else:
            self._see(entry, digest, seen_at)

    def _see(self, entry: _Sent, digest: str, seen_at: float) -> None:
        entry.seen += 1
        if digest != entry.digest:
            entry.corrupted = True
        if entry.seen == 1:
            self.first_seen_last = max(self.first_seen_last, seen_at)
            # the store may expose the message before the client reads the 250: clamp at 1 µs
            us = min(max(1, int((seen_at - entry.accepted_at) * 1e6)), HIGHEST_US)
            self.delivery.record_value(us)
            self.delivered_per_second[int(seen_at)] += 1
            if self.on_delivery is not None:
                self.on_delivery(entry.accepted_at, us)

    def holds(self, message_id: str, recipient: str) -> bool:
        """Whether the server accepted a copy of ``message_id`` for ``recipient``: only
        such a copy is the watcher's to delete from that mailbox."""
        return (message_id, recipient) in self.messages

    def watching(self, recipient: str) -> None:
        """A watcher looks at ``recipient``'s mailbox for this run."""
        self.watched.add(recipient)

    def watcher_looked(self, recipient: str, as_of: float | None = None) -> None:
        """The watcher of ``recipient``'s mailbox looked at all of it, as it stood at
        ``as_of`` (when the listing was asked for; now if not given)."""
        self.blind.pop(recipient, None)
        self.looked_as_of[recipient] = time.time() if as_of is None else as_of

    def looked_since(self, moment: float) -> bool:
        """Every watched mailbox was listed whole after ``moment`` (and after the newest
        first sighting): a stray copy delivered with the last expected ones was seen too."""
        since = max(moment, self.first_seen_last)
        return all(self.looked_as_of.get(box, 0.0) >= since for box in self.watched)

    def watcher_failed(self, recipient: str, reason: str) -> None:
        """The watcher of ``recipient``'s mailbox could not look (``reason``: the phase
        and the server's answer), and cannot until its next complete look."""
        self.blind[recipient] = reason

    def unseen(self) -> int:
        return sum(1 for m in self.messages.values() if m.seen == 0)

    def delivered(self) -> int:
        return sum(1 for m in self.messages.values() if m.seen)

    def misdelivered(self) -> dict[Copy, float]:
        """Sightings in a mailbox the message was not accepted for, with the time that
        message was accepted; sightings of a message not (yet) known at all are not."""
        if not self.orphans:
            return {}
        accepted_at = {message_id: m.accepted_at for (message_id, _), m in self.messages.items()}
        return {key: accepted_at[key[0]] for key in self.orphans if key[0] in accepted_at}

    def unaccounted_by_second(self, *, final: bool) -> Counter[int]:
        """Copies lost or unobserved (once ``final``), duplicated, corrupted or
        misdelivered, by the second each message was accepted in: a step-shaped run holds
        each step to its own messages' fate."""
        out: Counter[int] = Counter()
        for m in self.messages.values():
            if (m.seen == 0 and final) or m.seen > 1 or m.corrupted:
                out[int(m.accepted_at)] += 1
        for accepted_at in self.misdelivered().values():
            out[int(accepted_at)] += 1
        return out

    def accounting(self, *, final: bool) -> Accounting:
        """``final``: the grace period is over, so unseen copies are lost (or unobserved,
        where their mailbox's watcher could not look), not pending."""
        unseen = [rcpt for (_, rcpt), m in self.messages.items() if m.seen == 0]
        unobserved = sum(1 for rcpt in unseen if rcpt in self.blind) if final else 0
        return Accounting(
            messages=self.transactions,
            sent=self.sent,
            accepted=len(self.messages),
            delivered=len(self.messages) - len(unseen),
            lost=len(unseen) - unobserved if final else 0,
            unobserved=unobserved,
            duplicated=sum(1 for m in self.messages.values() if m.seen > 1),
            corrupted=sum(1 for m in self.messages.values() if m.corrupted),
            misdelivered=len(self.misdelivered()),
            rejected=dict(self.rejected),
            pending=0 if final else len(unseen),
            watch_failures=dict(self.blind),
        )
