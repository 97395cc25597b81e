"""Full-chain watchers: one per recipient account, seeing each message arrive (seed S3).

The plan's ``watch`` chooses the protocol; both kinds share the session loop and the
bookkeeping, and differ only in how they look at the mailbox:

- ``imap``: one long session waiting in IDLE; on an announcement, or after
  ``poll_interval_s`` without one, SEARCH, FETCH the new messages, mark them deleted and
  expunge them.
- ``pop3``: every ``poll_interval_s`` a whole session (connect, login, UIDL, RETR each new
  message, DELE, QUIT): a POP3 maildrop is the snapshot taken at login (RFC 1939 §4), so
  only a new session sees new mail.

A message is *seen* when the listing (SEARCH, UIDL) first shows it, so delivery latency is
one measure for both; its resolution is the poll interval (IMAP: how soon the server
announces new mail, at most the poll interval). Each sighting goes to the ledger with the
hash of the body fetched and the mailbox's address (one copy of a message to several
recipients); the watcher then deletes it, so the mailbox stays small and a second copy
is a real duplicate. Only this run's copies accepted for this very mailbox are deleted: a
copy found in a mailbox it was not addressed to is *misdelivered* and stays as evidence;
mail pre-populated with ``--prepopulate``, another run's, or not maildrill's at all stays
too. The first look reads what the mailbox already held by its header only (IMAP: the
Message-ID field; POP3: ``TOP n 0`` where CAPA lists TOP, else the whole message once per
run). A server UID already recorded is not recorded again (a deletion that failed leaves
the message for the next session to delete, not to count).

Plain IMAP and POP3 use STARTTLS where the server offers it and plain text where it does
not, unless the endpoint's ``starttls_required`` (:mod:`maildrill.load.starttls`). A
session that fails is reported like any other and reopened after a short pause; until a
look succeeds again, its mailbox is *blind* in the ledger, with the failing phase and the
server's answer as the reason (and ``watch:<phase>`` in the run's errors): a copy for a
blind mailbox never seen by the end is *unobserved*, not lost::

    greenlets = start_watchers(environment)      # in the master, at test_start
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import gevent

from maildrill.clients.events import Meter
from maildrill.clients.imap import ImapClient
from maildrill.clients.nodes import NodeCycle
from maildrill.clients.pop3 import Pop3Client
from maildrill.errors import PhaseError
from maildrill.load.ledger import of_run, parse_message
from maildrill.load.starttls import secure
from maildrill.load.state import IMAP_CONNECTIONS, POP3_CONNECTIONS, State, state_of
from maildrill.target import Account, Endpoint, Role, load_target
from maildrill.tls.context import tls_context

if TYPE_CHECKING:
    from locust.env import Environment

__all__ = ["start_watchers"]

C = TypeVar("C", ImapClient, Pop3Client)
RETRY_S = 0.5  # pause before reopening a failed session, doubled after each failure in a row
# up to this: a refused login retried twice a second would trip a lockout policy (seed S17:
# fail2ban maxretry = 3) against the load generator's address for the rest of the run
RETRY_MAX_S = 8.0
FETCH_BATCH = 50  # IMAP messages per FETCH/STORE
HEADER_ID = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
QUIT = "quit"  # a POP3 session failing here has looked already: its mailbox is not blind


class _Mailbox:
    """One account's sightings: each server UID is recorded once, for this run only.

    Only this run's messages (:func:`~maildrill.load.ledger.of_run`) are read in full, and
    of those only the copies the server accepted for this mailbox are deleted; everything
    else in the mailbox stays, read once per run by its header to learn that it is not
    ours."""

    def __init__(self, state: State, address: str) -> None:
        self.state = state
        self.address = address
        self.recorded: set[str] = set()
        self.ours: dict[str, str] = {}  # UID -> Message-ID of this run's messages seen here
        self.looked = False  # the first look meets what the mailbox held before the run
        state.ledger.watching(address)

    @property
    def run_id(self) -> str:
        plan = self.state.plan
        return "" if plan is None else plan.run_id

    def fresh(self, uid: str) -> bool:
        return uid not in self.recorded

    def foreign(self, uid: str, head: bytes | None) -> bool:
        """From a message's header alone (IMAP: its Message-ID field; POP3: TOP n 0): not
        this run's, so recorded now and never read in full (pre-populated mail, another
        run's, or mail that is not maildrill's). No header at all says nothing: not
        foreign."""
        if head is None:
            return False
        message_id, _ = parse_message(head + b"\r\n\r\n")
        if message_id is not None and of_run(message_id, self.run_id):
            return False
        self.recorded.add(uid)
        return True

    def disposable(self, uid: str) -> bool:
        """A copy of this run's that the server accepted for this mailbox: ours to delete.
        One whose sent record has not come yet is deleted at a later look."""
        message_id = self.ours.get(uid)
        return message_id is not None and self.state.ledger.holds(message_id, self.address)

    def saw(self, uid: str, raw: bytes, seen_at: float) -> None:
        self.recorded.add(uid)
        message_id, digest = parse_message(raw)
        if message_id is None or not of_run(message_id, self.run_id):
            return
        self.ours[uid] = message_id
        self.state.ledger.sighting(message_id, digest, seen_at, recipient=self.address)

    def look_done(self, as_of: float) -> None:
        """The whole mailbox was looked at as it stood at ``as_of`` (when the listing was
        asked for): a copy not seen by then was not there."""
        self.looked = True
        self.state.ledger.watcher_looked(self.address, as_of)


class _Watcher(Generic[C]):
    """How one kind of watcher looks at one account's mailbox through its client.

    ``stage`` names what the session was doing (connect, starttls, login, select, look,
    idle, quit): the reason a failed session gives."""

    def __init__(self, client: C, account: Account, endpoint: Endpoint, poll_s: float) -> None:
        self.client: C = client
        self.account = account
        self.endpoint = endpoint
        self.poll_s = poll_s
        self.stage = "connect"

    @property
    def meter(self) -> Meter:
        meter: Meter = self.client.meter  # each connect makes a new one, naming the node
        return meter

    def open(self) -> None:
        """Connect, STARTTLS where offered (or required), log in."""
        self.stage = "connect"
        self.client.connect()
        self.stage = "starttls"
        secure(self.client, self.endpoint)
        self.stage = "login"
        self.client.login(self.account.local, self.account.password)

    def session(self, state: State, mailbox: _Mailbox) -> None:
        """Log in and look at the mailbox; return when the look is done or the run is."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _ImapWatcher(_Watcher[ImapClient]):
    def session(self, state: State, mailbox: _Mailbox) -> None:
        imap = self.client
        self.open()
        self.stage = "select"
        imap.select("INBOX")
        while not state.complete:
            self.stage = "look"
            self._collect(mailbox)
            self.stage = "idle"
            imap.idle(self.poll_s)

    def _collect(self, mailbox: _Mailbox) -> None:
        imap = self.client
        listed_at = time.time()
        uids = imap.search(["NOT", "DELETED"])
        seen_at = time.time()
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            fresh = [uid for uid in batch if mailbox.fresh(str(uid))]
            if fresh and not mailbox.looked:
                # what the mailbox held before the run (say --prepopulate's thousands, some
                # of MBs) is read by its Message-ID only
                heads = imap.fetch(fresh, [HEADER_ID])
                fresh = [
                    uid for uid in fresh if not mailbox.foreign(str(uid), _header(heads.get(uid)))
                ]
            if fresh:
                for uid, data in imap.fetch(fresh, ["BODY.PEEK[]"]).items():
                    mailbox.saw(str(uid), bytes(data.get(b"BODY[]") or b""), seen_at)
            disposable = [uid for uid in batch if mailbox.disposable(str(uid))]
            if disposable:
                imap.store_deleted(disposable)
        mailbox.look_done(listed_at)

    def close(self) -> None:
        with contextlib.suppress(PhaseError):
            self.client.logout()


def _header(fetched: dict[bytes, Any] | None) -> bytes | None:
    """The header part of a FETCH answer for ``HEADER_ID``, however the server names it."""
    for key, value in (fetched or {}).items():
        if key.upper().startswith(b"BODY[HEADER"):
            return bytes(value or b"")
    return None


class _Pop3Watcher(_Watcher[Pop3Client]):
    def session(self, state: State, mailbox: _Mailbox) -> None:
        pop = self.client
        self.open()
        self.stage = "look"
        # the first look reads what the maildrop already held by its header (TOP n 0)
        # where the server has TOP, so --prepopulate's messages are not fetched whole
        by_header = not mailbox.looked and "TOP" in pop.capa()
        listed_at = time.time()
        listing = pop.uidl()
        seen_at = time.time()
        for number, uid in listing:
            if mailbox.fresh(uid):
                if by_header and mailbox.foreign(uid, pop.top(number)):
                    continue
                mailbox.saw(uid, pop.retr(number), seen_at)
            if mailbox.disposable(uid):
                pop.dele(number)
        mailbox.look_done(listed_at)
        self.stage = QUIT
        pop.quit()  # RFC 1939 §6: the deletions happen at QUIT

    def close(self) -> None:
        with contextlib.suppress(PhaseError):
            self.client.quit()


def start_watchers(environment: Environment) -> list[gevent.Greenlet]:
    """One greenlet per watched account, measuring into the environment's State."""
    state = state_of(environment)
    plan = state.plan
    assert plan is not None
    target = load_target(plan.target)
    role = Role(plan.roles["read"])
    endpoint = target.endpoints[role]
    nodes = NodeCycle(endpoint.host, plan.nodes[str(role)])
    options: dict[str, Any] = {
        "tls_context": tls_context(target),
        "implicit_tls": endpoint.implicit_tls,
        "starttls": False,  # where offered, after connect: see secure()
        "timeout": plan.timeout_s,
    }
    poll_s = plan.poll_interval_s
    fire = environment.events.request.fire
    gauges = state.gauge_sources
    greenlets = []
    for index in range(plan.watch_accounts):
        account = target.account(index)
        watcher: _Pop3Watcher | _ImapWatcher
        if plan.watch == "pop3":
            pop3 = Pop3Client(fire, nodes, gauge=gauges.get(POP3_CONNECTIONS), **options)
            watcher = _Pop3Watcher(pop3, account, endpoint, poll_s)
        else:
            imap = ImapClient(fire, nodes, gauge=gauges.get(IMAP_CONNECTIONS), **options)
            watcher = _ImapWatcher(imap, account, endpoint, poll_s)
        # spread the polls over the interval rather than all at once
        first = poll_s * index / plan.watch_accounts
        greenlets.append(gevent.spawn_later(first, _watch, state, watcher, poll_s))
    return greenlets


def _watch(state: State, watcher: _Pop3Watcher | _ImapWatcher, poll_s: float) -> None:
    mailbox = _Mailbox(state, watcher.account.address)
    retry_s = RETRY_S
    while not state.complete:
        began = time.monotonic()
        with watcher.meter.transaction("session") as tx:
            watcher.session(state, mailbox)
        if not tx.ok:
            state.errors[f"watch:{watcher.stage}"] += 1
            if watcher.stage != QUIT:
                reason = f"{watcher.stage}: {_text(tx.detail) or tx.kind}"
                state.ledger.watcher_failed(mailbox.address, reason)
            watcher.close()
            # only a session refused before it could look backs off: one that got in and
            # broke later (a restarted server) is reopened at once
            opened = watcher.stage not in ("connect", "starttls", "login")
            gevent.sleep(RETRY_S if opened else retry_s)
            retry_s = RETRY_S if opened else min(RETRY_MAX_S, 2 * retry_s)
        else:  # a POP3 look is done: the next one a poll interval after this one began
            retry_s = RETRY_S
            gevent.sleep(max(0.0, poll_s - (time.monotonic() - began)))
    watcher.close()


def _text(detail: str) -> str:
    """The server's answer as it read: imapclient hands it over as the repr of bytes."""
    if len(detail) > 2 and detail[0] == "b" and detail[1] in "'\"" and detail[-1] == detail[1]:
        return detail[2:-1]
    return detail
