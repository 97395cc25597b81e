"""Full-chain accounting (seed S3): every message ends in exactly one bucket."""

from __future__ import annotations

from maildrill.load.ledger import Ledger, make_message, parse_message


def test_message_round_trip_keeps_id_and_hash() -> None:
    message_id, raw, digest = make_message("run1", "a@example.test", "b@example.test", 4096)
    # a store may convert CRLF to LF and prepend trace headers; the hash must survive that
    stored = b"Received: from x\n" + raw.replace(b"\r\n", b"\n")
    assert parse_message(stored) == (message_id, digest)
    assert len(raw) > 4000


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
