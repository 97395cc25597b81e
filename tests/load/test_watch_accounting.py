"""Unobserved and misdelivered copies in the ledger and the SLO, and an IMAP deletion that
never expunges someone else's message (issue 10, case 6 and case 8's misdelivery items)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maildrill.clients.imap import ImapClient
from maildrill.clients.nodes import NodeCycle
from maildrill.load.ledger import Ledger
from maildrill.load.slo import evaluate
from maildrill.results import Accounting, LatencySummary, LoadResult, SloCheck
from maildrill.target import SLO


def test_a_copy_for_a_mailbox_nobody_could_look_at_is_unobserved_not_lost() -> None:
    ledger = Ledger()
    ledger.accepted("<m1>", "h", accepted_at=100.0, recipients=["a@x", "b@x", "c@x"])
    ledger.sighting("<m1>", "h", seen_at=100.5, recipient="a@x")
    ledger.watcher_looked("b@x")
    ledger.watcher_failed("c@x", "login: [AUTHENTICATIONFAILED] Invalid credentials")
    assert ledger.accounting(final=False).pending == 2  # not over yet: neither judged
    acc = ledger.accounting(final=True)
    assert (acc.delivered, acc.lost, acc.unobserved, acc.pending) == (1, 1, 1, 0), acc
    assert acc.watch_failures == {"c@x": "login: [AUTHENTICATIONFAILED] Invalid credentials"}
    assert sum(ledger.unaccounted_by_second(final=True).values()) == 2


def test_a_watcher_that_looks_again_can_tell_loss() -> None:
    ledger = Ledger()
    ledger.accepted("<m1>", "h", accepted_at=100.0, recipients=["a@x"])
    ledger.watcher_failed("a@x", "connect: timeout")
    ledger.watcher_looked("a@x")  # it reconnected and saw the whole mailbox
    acc = ledger.accounting(final=True)
    assert (acc.lost, acc.unobserved, acc.watch_failures) == (1, 0, {}), acc


def test_a_copy_in_the_wrong_mailbox_is_misdelivered_whichever_record_comes_first() -> None:
    ledger = Ledger()
    ledger.sighting("<m1>", "h", seen_at=100.2, recipient="b@x")  # before its sent record
    ledger.accepted("<m1>", "h", accepted_at=100.0, recipients=["a@x"])
    ledger.sighting("<m1>", "h", seen_at=100.3, recipient="a@x")
    ledger.accepted("<m2>", "h", accepted_at=101.0, recipients=["a@x"])
    ledger.sighting("<m2>", "h", seen_at=101.2, recipient="c@x")
    ledger.sighting("<m2>", "h", seen_at=101.3, recipient="c@x")  # one wrong mailbox: once
    ledger.sighting("<unknown>", "h", seen_at=101.4, recipient="c@x")  # no record (yet)
    assert ledger.holds("<m1>", "a@x") and not ledger.holds("<m1>", "b@x")
    acc = ledger.accounting(final=True)
    assert (acc.delivered, acc.lost, acc.misdelivered) == (1, 1, 2), acc
    assert ledger.unaccounted_by_second(final=True) == {100: 1, 101: 2}


def _run(acc: Accounting) -> LoadResult:
    now = datetime.now(UTC)
    delivery = LatencySummary(
        count=1, min_us=1, mean_us=1.0, p50_us=1, p90_us=1, p99_us=1, p999_us=1, max_us=1
    )
    return LoadResult(
        scenario="full_chain",
        started=now,
        ended=now,
        duration_s=1.0,
        delivery=delivery,
        accounting=acc,
    )


def test_unobserved_and_misdelivered_copies_miss_the_slo() -> None:
    clean = evaluate(_run(Accounting(sent=3, accepted=3, delivered=3)), SLO())
    assert clean.met and clean.checks["unobserved_messages"].met
    blind = evaluate(_run(Accounting(sent=3, accepted=3, delivered=1, unobserved=2)), SLO())
    assert blind.met is False
    assert blind.checks["unobserved_messages"] == SloCheck(limit=0, measured=2, met=False)
    assert blind.checks["unaccounted_messages"].met  # the server did nothing wrong that we saw
    stray = evaluate(_run(Accounting(sent=3, accepted=3, delivered=3, misdelivered=1)), SLO())
    assert stray.met is False and stray.checks["unaccounted_messages"].measured == 1


class _Server:
    """The calls an imapclient connection gets, on a server without UIDPLUS."""

    def __init__(self, deleted: set[int]) -> None:
        self.deleted = deleted  # flagged \Deleted already, by someone else
        self.expunged: list[int] = []

    def add_flags(self, uids: list[int], flags: list[bytes], silent: bool = False) -> None:
        self.deleted |= set(uids)

    def has_capability(self, name: str) -> bool:
        return False

    def search(self, criteria: list[Any]) -> list[int]:
        assert criteria == ["DELETED"]
        return sorted(self.deleted)

    def expunge(self) -> None:
        self.expunged, self.deleted = sorted(self.deleted), set()


def _client(server: _Server) -> ImapClient:
    client = ImapClient(lambda **_: None, NodeCycle("imap.test", [("127.0.0.1", 143)]))
    client.client = server  # type: ignore[assignment]
    return client


def test_without_uidplus_someone_elses_deleted_message_is_never_expunged() -> None:
    theirs = _Server(deleted={7})
    _client(theirs).store_deleted([10, 11])
    assert theirs.expunged == [] and theirs.deleted == {7, 10, 11}  # ours stay flagged
    alone = _Server(deleted=set())
    _client(alone).store_deleted([10, 11])
    assert alone.expunged == [10, 11]


def test_the_run_ends_only_after_every_mailbox_is_listed_again_after_the_last_copy() -> None:
    """The race that lost a stray POP3 copy: the intended copies were all seen, so the run
    ended before the other mailbox's next look could find the stray."""
    ledger = Ledger()
    ledger.watching("a@x")
    ledger.watching("b@x")
    ledger.accepted("<m1>", "h", accepted_at=100.0, recipients=["a@x"])
    ledger.watcher_looked("b@x", as_of=100.1)  # b listed before the stray arrived
    ledger.sighting("<m1>", "h", seen_at=100.4, recipient="a@x")
    ledger.watcher_looked("a@x", as_of=100.3)
    assert ledger.unseen() == 0
    assert not ledger.looked_since(100.2), "b@x has not been listed since the last copy came"
    ledger.watcher_looked("b@x", as_of=100.5)
    assert not ledger.looked_since(100.2), "nor a@x since its own copy was first seen"
    ledger.watcher_looked("a@x", as_of=100.6)
    assert ledger.looked_since(100.2)
