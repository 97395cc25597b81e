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
is a real duplicate. Only load messages are deleted: mail pre-populated with
``--prepopulate`` (or not maildrill's at all) stays; the first look reads what the mailbox
already held by its header only (IMAP: the Message-ID field; POP3: ``TOP n 0`` where CAPA
lists TOP, else the whole message once per run). A server UID
already recorded is not recorded again (a deletion that failed leaves the message for the
next session to delete, not to count).
A failed session is reported like any other and reopened after a short pause::

    greenlets = start_watchers(state)      # in the master, at test_start
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Generic, TypeVar

import gevent
from locust import events

from maildrill.clients.events import Meter, PhaseError
from maildrill.clients.imap import ImapClient
from maildrill.clients.nodes import NodeCycle
from maildrill.clients.pop3 import Pop3Client
from maildrill.load.ledger import is_load_message, parse_message
from maildrill.load.plugin import State
from maildrill.resolve import tls_context
from maildrill.target import Account, Role, load_target

__all__ = ["start_watchers"]

C = TypeVar("C", ImapClient, Pop3Client)
RETRY_S = 0.5  # pause before reopening a failed session
FETCH_BATCH = 50  # IMAP messages per FETCH/STORE
HEADER_ID = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"


class _Mailbox:
    """One account's sightings: each server UID is recorded once, for this run only.

    Only load messages (:func:`~maildrill.load.ledger.is_load_message`: this run's, or an
    interrupted run's left behind) are deleted; pre-populated mail and anything else in the
    mailbox stays, read once per run to learn that it is not ours."""

    def __init__(self, state: State, address: str) -> None:
        self.state = state
        self.address = address
        self.recorded: set[str] = set()
        self.load: set[str] = set()  # UIDs of load messages: to delete
        self.looked = False  # the first look meets what the mailbox held before the run

    def fresh(self, uid: str) -> bool:
        return uid not in self.recorded

    def foreign(self, uid: str, head: bytes | None) -> bool:
        """From a message's header alone (IMAP: its Message-ID field; POP3: TOP n 0): not a
        load message, so recorded now and never read in full (pre-populated mail, or mail
        that is not maildrill's). No header at all says nothing: not foreign."""
        if head is None:
            return False
        message_id, _ = parse_message(head + b"\r\n\r\n")
        if message_id is not None and is_load_message(message_id):
            return False
        self.recorded.add(uid)
        return True

    def disposable(self, uid: str) -> bool:
        return uid in self.load

    def saw(self, uid: str, raw: bytes, seen_at: float) -> None:
        self.recorded.add(uid)
        message_id, digest = parse_message(raw)
        if message_id is None or not is_load_message(message_id):
            return
        self.load.add(uid)
        plan = self.state.plan
        if plan is not None and plan.run_id in message_id:
            self.state.ledger.sighting(message_id, digest, seen_at, recipient=self.address)


class _Watcher(Generic[C]):
    """How one kind of watcher looks at one account's mailbox through its client."""

    def __init__(self, client: C, account: Account, poll_s: float) -> None:
        self.client: C = client
        self.account = account
        self.poll_s = poll_s

    @property
    def meter(self) -> Meter:
        meter: Meter = self.client.meter  # each connect makes a new one, naming the node
        return meter

    def session(self, state: State, mailbox: _Mailbox) -> None:
        """Log in and look at the mailbox; return when the look is done or the run is."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _ImapWatcher(_Watcher[ImapClient]):
    def session(self, state: State, mailbox: _Mailbox) -> None:
        imap = self.client
        imap.connect()
        imap.login(self.account.local, self.account.password)
        imap.select("INBOX")
        while not state.complete:
            self._collect(mailbox)
            imap.idle(self.poll_s)

    def _collect(self, mailbox: _Mailbox) -> None:
        imap = self.client
        uids = imap.search(["NOT", "DELETED"])
        seen_at = time.time()
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            fresh = [uid for uid in batch if mailbox.fresh(str(uid))]
            if fresh and not mailbox.looked:
                # what the mailbox held before the run (say --prepopulate's thousands, some
                # of MBs) is read by its Message-ID only; a load message left by an
                # interrupted run is then read in full, to delete it
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
        mailbox.looked = True

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
        pop.connect()
        pop.login(self.account.local, self.account.password)
        # the first look reads what the maildrop already held by its header (TOP n 0)
        # where the server has TOP, so --prepopulate's messages are not fetched whole
        by_header = not mailbox.looked and "TOP" in pop.capa()
        listing = pop.uidl()
        seen_at = time.time()
        for number, uid in listing:
            if mailbox.fresh(uid):
                if by_header and mailbox.foreign(uid, pop.top(number)):
                    continue
                mailbox.saw(uid, pop.retr(number), seen_at)
            if mailbox.disposable(uid):
                pop.dele(number)
        mailbox.looked = True
        pop.quit()  # RFC 1939 §6: the deletions happen at QUIT

    def close(self) -> None:
        with contextlib.suppress(PhaseError):
            self.client.quit()


def start_watchers(state: State) -> list[gevent.Greenlet]:
    plan = state.plan
    assert plan is not None
    target = load_target(plan.target)
    role = Role(plan.roles["read"])
    endpoint = target.endpoints[role]
    nodes = NodeCycle(endpoint.host, plan.nodes[str(role)])
    options: dict[str, Any] = {
        "tls_context": tls_context(target),
        "implicit_tls": endpoint.implicit_tls,
        "starttls": not endpoint.implicit_tls,
        "timeout": plan.timeout_s,
    }
    poll_s = plan.poll_interval_s
    greenlets = []
    for index in range(plan.watch_accounts):
        account = target.account(index)
        fire = events.request.fire
        watcher: _Pop3Watcher | _ImapWatcher = (
            _Pop3Watcher(Pop3Client(fire, nodes, **options), account, poll_s)
            if plan.watch == "pop3"
            else _ImapWatcher(ImapClient(fire, nodes, **options), account, poll_s)
        )
        # spread the polls over the interval rather than all at once
        first = poll_s * index / plan.watch_accounts
        greenlets.append(gevent.spawn_later(first, _watch, state, watcher, poll_s))
    return greenlets


def _watch(state: State, watcher: _Pop3Watcher | _ImapWatcher, poll_s: float) -> None:
    mailbox = _Mailbox(state, watcher.account.address)
    while not state.complete:
        began = time.monotonic()
        with watcher.meter.transaction("session") as tx:
            watcher.session(state, mailbox)
        if not tx.ok:
            watcher.close()
            gevent.sleep(RETRY_S)
        else:  # a POP3 look is done: the next one a poll interval after this one began
            gevent.sleep(max(0.0, poll_s - (time.monotonic() - began)))
    watcher.close()
