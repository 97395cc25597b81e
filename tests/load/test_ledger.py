"""Full-chain accounting (seed S3): every message ends in exactly one bucket."""

from __future__ import annotations

import os

import pytest

from maildrill.load.ledger import (
    PREPOPULATED_RUN,
    Ledger,
    body_hash,
    make_message,
    of_run,
    parse_message,
)


def test_message_round_trip_keeps_id_and_hash() -> None:
    message_id, raw, digest = make_message("run1", "a@example.test", "b@example.test", 4096)
    # a store may convert CRLF to LF and prepend trace headers; the hash must survive that
    stored = b"Received: from x\n" + raw.replace(b"\r\n", b"\n")
    assert parse_message(stored) == (message_id, digest)
    assert len(raw) > 4000


@pytest.mark.parametrize("size", [1, 78, 200, 2048, 4096, 300_000])
def test_cached_filler_hash_equals_hashing_the_whole_body(size: int) -> None:
    ids = set()
    for _ in range(3):
        message_id, raw, digest = make_message("run1", "a@example.test", "b@example.test", size)
        assert digest == body_hash(raw.partition(b"\r\n\r\n")[2])
        assert abs(len(raw.partition(b"\r\n\r\n")[2]) - size) < 78 or size < 78
        ids.add(message_id)
    assert len(ids) == 3


def test_a_forked_child_makes_other_message_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, make_message("run1", "a@x", "b@x", 100)[0].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    parent = make_message("run1", "a@x", "b@x", 100)[0]
    assert child.split(".")[1][:16] != parent.split(".")[1][:16]  # the per-process prefix


def test_accounting_buckets() -> None:
    ledger = Ledger()
    for name in ("ok", "dup", "bad", "lost", "late"):
        ledger.accepted(name, "h", accepted_at=100.0)
    ledger.sighting("late-seen-first", "h", seen_at=100.1)  # seen before its record arrived
    ledger.accepted("late-seen-first", "h", accepted_at=100.0)
    ledger.sighting("ok", "h", seen_at=100.5)
    ledger.sighting("dup", "h", seen_at=100.5)
    ledger.sighting("dup", "h", seen_at=100.6)
    ledger.sighting("bad", "other", seen_at=100.5)
    ledger.attempt_failed("550")
    ledger.attempt_failed("timeout")

    pending = ledger.accounting(final=False)
    assert (pending.lost, pending.pending) == (0, 2)  # "lost" and "late" not yet seen

    ledger.sighting("late", "h", seen_at=101.0)
    final = ledger.accounting(final=True)
    assert final.sent == 8 and final.accepted == 6
    assert final.delivered == 5 and final.lost == 1 and final.pending == 0
    assert final.duplicated == 1 and final.corrupted == 1
    assert final.rejected == {"550": 1, "timeout": 1}
    assert ledger.delivery.get_total_count() == 5
    assert ledger.delivery.get_max_value() >= 999_000  # "late": 1 s after its 250


def test_delivery_before_the_250_is_clamped() -> None:
    ledger = Ledger()
    ledger.accepted("x", "h", accepted_at=100.0)
    ledger.sighting("x", "h", seen_at=99.99)
    assert ledger.delivery.get_min_value() == 1


def test_each_recipient_copy_is_accounted_for_on_its_own() -> None:
    """One message to three recipients, one of them refused at RCPT (RFC 5321 §3.3: the
    others still get it): three copies, one rejected, one delivered, one lost."""
    ledger = Ledger()
    ledger.transaction()
    ledger.accepted("<m>", "h", accepted_at=100.0, recipients=["a@x", "b@x"])
    ledger.attempt_failed("550")  # c@x
    ledger.sighting("<m>", "h", seen_at=100.5, recipient="a@x")
    ledger.sighting("<m>", "h", seen_at=100.6, recipient="c@x")  # never accepted for c@x
    final = ledger.accounting(final=True)
    assert (final.messages, final.sent, final.accepted) == (1, 3, 2)
    assert (final.delivered, final.lost, final.duplicated) == (1, 1, 0)
    assert final.rejected == {"550": 1}
    assert ledger.orphans == {("<m>", "c@x"): [("h", 100.6)]}  # not a's or b's copy


def test_a_copy_seen_twice_in_one_mailbox_is_a_duplicate_not_two_copies() -> None:
    ledger = Ledger()
    ledger.accepted("<m>", "h", accepted_at=100.0, recipients=["a@x", "b@x"])
    for rcpt in ("a@x", "b@x", "b@x"):
        ledger.sighting("<m>", "h", seen_at=100.5, recipient=rcpt)
    ledger.sighting("<m>", "other", seen_at=100.5, recipient="a@x")
    final = ledger.accounting(final=True)
    assert (final.delivered, final.lost, final.duplicated, final.corrupted) == (2, 0, 2, 1)
    assert ledger.delivery.get_total_count() == 2  # latency once per copy


def test_make_message_lists_every_recipient() -> None:
    _, raw, _ = make_message("run1", "a@x", ["b@example.test", "c@example.test"], 512)
    assert b"To: <b@example.test>,\r\n <c@example.test>\r\n" in raw


def test_only_this_runs_messages_are_disposable() -> None:
    assert of_run(make_message("run1", "a@x", "b@x", 100)[0], "run1")
    assert not of_run("<older-run.0123@maildrill.test>", "run1")  # an interrupted run's
    assert not of_run("<run10.0123@maildrill.test>", "run1")  # another run's, same prefix
    assert not of_run(f"<{PREPOPULATED_RUN}.0123@maildrill.test>", "run1")
    assert not of_run("<run1.CAF0a1b2@mail.example.com>", "run1")  # not maildrill's at all
