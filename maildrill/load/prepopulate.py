"""Mailbox pre-population (imaptest's ``msgs=``): top each test account's INBOX up to M
messages over IMAP APPEND before a load run, so imap_session and pop3_session read
realistic mailboxes.

It runs in the calling (CLI) process, before the Locust subprocess starts, with plain
threads and the instrumented IMAP client (imapclient) — never gevent. An account that
already holds M messages or more gets none: repeated runs do not grow the mailboxes. The
work is bounded by ``budget_s``; what was appended by then is reported and the run goes on::

    done = prepopulate(load_target("lab.toml"), 200, load_profile("default"), progress=print)
    done.appended, done.complete
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from maildrill.clients.imap import ImapClient
from maildrill.clients.nodes import NodeCycle
from maildrill.errors import ConfigError, PhaseError, TargetError
from maildrill.load.ledger import PREPOPULATED_RUN
from maildrill.load.message import MessageFactory, MessageProfile
from maildrill.load.plan import safe_addresses
from maildrill.load.starttls import secure
from maildrill.target import Account, Endpoint, Role, Target
from maildrill.tls.context import tls_context

__all__ = ["BUDGET_S", "Prepopulated", "prepopulate", "prepopulate_endpoint"]

BUDGET_S = 300.0
THREADS = 4  # APPEND is server-bound; a few connections keep it busy on a 2-core box
PROGRESS_EVERY_S = 2.0
SEEN = 0.9  # the share of old mail already read: imap_session still finds unseen messages
SENDER = "prepopulate@maildrill.test"


@dataclass(frozen=True)
class Prepopulated:
    per_account: int
    appended: int
    accounts: int  # accounts that received at least one message
    seconds: float
    complete: bool  # every account reached per_account within the budget

    def to_json(self) -> dict[str, int]:
        return {
            "per_account": self.per_account,
            "appended": self.appended,
            "accounts": self.accounts,
        }


def _no_events(**_: Any) -> None:
    """Pre-population is not the measured run: its phases are not reported."""


def prepopulate_endpoint(
    target: Target, per_account: int
) -> tuple[Endpoint, list[tuple[str, int]]]:
    """The endpoint pre-population appends over and its addresses, or the one line saying
    why it cannot (checked before any traffic, by :func:`maildrill.load.runner.plan_load`)."""
    if per_account < 0:
        raise ConfigError("--prepopulate: must be 0 or more messages")
    role = next((r for r in (Role.IMAPS, Role.IMAP) if r in target.endpoints), None)
    if role is None:
        raise ConfigError("--prepopulate: the target needs an imap or imaps endpoint (APPEND)")
    return target.endpoints[role], safe_addresses(target, role, "pre-population")


def prepopulate(
    target: Target,
    per_account: int,
    profile: MessageProfile,
    *,
    budget_s: float = BUDGET_S,
    timeout_s: float = 10.0,
    progress: Callable[[str], None] | None = None,
) -> Prepopulated:
    """Top every test account's INBOX up to ``per_account`` messages drawn from ``profile``."""
    endpoint, addresses = prepopulate_endpoint(target, per_account)
    nodes = NodeCycle(endpoint.host, addresses)
    context = tls_context(target)
    deadline = time.monotonic() + budget_s
    started = time.monotonic()
    tally = _Tally(target.accounts.count, progress)

    def fill(index: int) -> None:
        imap = ImapClient(
            _no_events,
            nodes,
            tls_context=context,
            implicit_tls=endpoint.implicit_tls,
            timeout=timeout_s,  # no gauge: not the run's IMAP connection peak (seed S22)
        )
        _fill(imap, endpoint, target.account(index), index, per_account, profile, deadline, tally)

    with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="prepopulate") as pool:
        futures = [pool.submit(fill, i) for i in range(tally.total)]
        try:
            failures = [f.exception() for f in futures]
        except KeyboardInterrupt:  # Ctrl-C: stop now, not when every account is done
            tally.stop.set()
            for future in futures:
                future.cancel()
            raise
    error = next((e for e in failures if e is not None), None)
    if error is not None:
        raise error
    seconds = time.monotonic() - started
    complete = tally.full == tally.total
    if progress is not None:
        state = "done" if complete else f"stopped at the {budget_s:g} s budget"
        progress(
            f"prepopulate: {state}: {tally.appended} messages appended, "
            f"{tally.full}/{tally.total} accounts hold {per_account} ({seconds:.1f} s)"
        )
    return Prepopulated(per_account, tally.appended, tally.touched, round(seconds, 2), complete)


class _Tally:
    """Counts shared by the threads; prints a progress line every few seconds."""

    def __init__(self, total: int, progress: Callable[[str], None] | None) -> None:
        self.total = total
        self.appended = 0
        self.full = 0
        self.touched = 0
        self._progress = progress
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self._next = time.monotonic() + PROGRESS_EVERY_S

    def add(self, appended: int = 0, *, full: bool = False, touched: bool = False) -> None:
        with self._lock:
            self.appended += appended
            self.full += full
            self.touched += touched
            now = time.monotonic()
            if self._progress is not None and now >= self._next:
                self._next = now + PROGRESS_EVERY_S
                self._progress(
                    f"prepopulate: {self.appended} messages appended, "
                    f"{self.full}/{self.total} accounts full"
                )


def _fill(
    imap: ImapClient,
    endpoint: Endpoint,
    account: Account,
    index: int,
    per_account: int,
    profile: MessageProfile,
    deadline: float,
    tally: _Tally,
) -> None:
    # no run ID in these Message-IDs: full_chain's watchers never take them for its own
    factory = MessageFactory(profile, PREPOPULATED_RUN, seed=index)
    try:
        imap.connect()
        secure(imap, endpoint)  # STARTTLS where offered, as the watchers do
        imap.login(account.local, account.password)
        exists = int(imap.select("INBOX").get(b"EXISTS", 0))
        missing = max(0, per_account - exists)
        for n in range(missing):
            if time.monotonic() > deadline or tally.stop.is_set():
                return
            message = factory.make(SENDER, [account.address])
            flags = (b"\\Seen",) if factory.rng.random() < SEEN else ()
            imap.append(message.raw, flags)
            tally.add(1, touched=n == 0)
        tally.add(full=True)
    except PhaseError as exc:
        raise TargetError(
            f"--prepopulate: {account.address} on {imap.request_type}: {exc.kind} "
            f"{exc.detail}".strip()
        ) from None
    finally:
        with contextlib.suppress(PhaseError):
            imap.logout()
