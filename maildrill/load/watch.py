"""IMAP watcher sessions: one per recipient account, seeing full-chain messages arrive.

Each watcher logs in, selects INBOX and waits in IDLE (polling if the server has none); on a
change it fetches the new messages, records each sighting in the ledger (Message-ID and
body hash), and deletes them so the mailbox stays small and a second copy is a real
duplicate. A failed session is reported like any other and reopened after a short pause.
"""

from __future__ import annotations

import contextlib

import gevent
from locust import events

from maildrill.clients.events import PhaseError
from maildrill.clients.imap import ImapClient
from maildrill.clients.nodes import NodeCycle
from maildrill.load.ledger import parse_message
from maildrill.load.plugin import State
from maildrill.resolve import tls_context
from maildrill.target import Role, load_target

__all__ = ["start_watchers"]

# IDLE wait before searching anyway: bounds the measurement lag where the server
# announces new mail late (pymap's Maildir backend notices changes about once a second)
IDLE_S = 0.25


def start_watchers(state: State) -> list[gevent.Greenlet]:
    plan = state.plan
    assert plan is not None
    target = load_target(plan.target)
    role = Role(plan.roles["read"])
    endpoint = target.endpoints[role]
    nodes = NodeCycle(endpoint.host, plan.nodes[str(role)])
    ctx = tls_context(target)
    greenlets = []
    for index in range(plan.watch_accounts):
        account = target.account(index)
        client = ImapClient(
            events.request.fire,
            nodes,
            tls_context=ctx,
            implicit_tls=endpoint.implicit_tls,
            starttls=not endpoint.implicit_tls,
            timeout=plan.timeout_s,
        )
        greenlets.append(gevent.spawn(_watch, state, client, account.local, account.password))
    return greenlets


def _watch(state: State, imap: ImapClient, user: str, password: str) -> None:
    while not state.complete:
        with imap.meter.transaction("session") as tx:
            imap.connect()
            imap.login(user, password)
            imap.select("INBOX")
            while not state.complete:
                _collect(state, imap)
                imap.idle(IDLE_S)
        if not tx.ok:
            _close(imap)
            gevent.sleep(0.5)
    _close(imap)


def _collect(state: State, imap: ImapClient) -> None:
    uids = imap.search(["NOT", "DELETED"])
    if not uids:
        return
    for start in range(0, len(uids), 50):
        batch = uids[start : start + 50]
        fetched = imap.fetch(batch, ["BODY.PEEK[]"])
        for data in fetched.values():
            raw = data.get(b"BODY[]") or b""
            message_id, digest = parse_message(bytes(raw))
            if message_id and state.plan and state.plan.run_id in message_id:
                state.ledger.sighting(message_id, digest)
        imap.store_deleted(batch)


def _close(imap: ImapClient) -> None:
    with contextlib.suppress(PhaseError):
        imap.logout()
