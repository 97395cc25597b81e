"""Message profiles against the good reference stack (real Postfix and Dovecot): mailboxes
topped up over IMAP APPEND before a run, and a message over Postfix's message_size_limit
counted as a rejected copy with its reply code, not lost.

Brought up exactly as tests/stack does; without the Debian packages or root it skips on a
developer machine and fails in CI (CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.load import run_load
from maildrill.load.message import DEFAULT_PROFILE
from maildrill.load.prepopulate import prepopulate
from tests.load.test_profile_runs import mailbox_sizes, profile_file
from tests.stack.conftest import RunningStack, bring_up

pytestmark = [pytest.mark.stack, pytest.mark.slow]

PER_ACCOUNT = 6


@pytest.fixture(scope="module")
def good_stack() -> Iterator[RunningStack]:
    yield from bring_up("good")


def test_prepopulate_fills_dovecot_mailboxes_once(good_stack: RunningStack, tmp_path: Path) -> None:
    target_file = good_stack.root / "target.toml"
    before = mailbox_sizes(target_file)
    lines: list[str] = []
    load = run_load(
        target_file, "imap_session", duration_s=2, rate=4, prepopulate=PER_ACCOUNT,
        out_dir=tmp_path, progress=lines.append,
    )  # fmt: skip
    after = mailbox_sizes(target_file)
    assert after == [max(PER_ACCOUNT, n) for n in before], (before, after, lines)
    assert load.prepopulated["appended"] == sum(max(0, PER_ACCOUNT - n) for n in before)
    assert load.failures == 0, load.errors
    assert next(p for p in load.phases if p.name == "fetch").count >= 4
    again = prepopulate(good_stack.target, PER_ACCOUNT, DEFAULT_PROFILE)
    assert (again.appended, again.complete) == (0, True)
    assert mailbox_sizes(target_file) == after


@pytest.mark.parametrize("watch", ["imap", "pop3"])
def test_full_chain_on_prepopulated_dovecot_mailboxes_keeps_them(
    good_stack: RunningStack, tmp_path: Path, watch: str
) -> None:
    """Dovecot answers the first look's header-only reads (IMAP FETCH of the Message-ID,
    POP3 TOP n 0): the pre-populated mail is recognised and kept, and every message of the
    run is seen and deleted."""
    target_file = good_stack.root / "target-raw.toml"
    prepopulate(good_stack.target, PER_ACCOUNT, DEFAULT_PROFILE)
    before = mailbox_sizes(target_file)
    load = run_load(target_file, "full_chain", duration_s=3, rate=5, watch=watch, out_dir=tmp_path)
    acc = load.accounting
    assert acc is not None and acc.accepted >= 10, acc
    assert acc.delivered == acc.accepted and (acc.lost, acc.duplicated, acc.corrupted) == (
        0, 0, 0,
    ), acc  # fmt: skip
    assert mailbox_sizes(target_file) == before  # none of the old mail deleted, all new
    if watch == "pop3":  # Dovecot lists TOP: the old mail was read by its header
        assert any(p.name == "top" and p.count >= PER_ACCOUNT for p in load.phases)


def test_over_postfix_size_limit_is_a_rejected_copy_with_552(
    good_stack: RunningStack, tmp_path: Path
) -> None:
    limit = good_stack.target.expect.max_message_size
    assert limit is not None
    load = run_load(
        good_stack.root / "target.toml",
        "smtp_inbound",
        duration_s=2,
        rate=2,
        message_profile=str(profile_file(tmp_path, limit + 100_000)),
        out_dir=tmp_path / "out",
    )
    acc = load.accounting
    assert acc is not None and acc.sent >= 2, (acc, load.errors)
    # RFC 1870 §6.1: Postfix refuses MAIL FROM SIZE= over message_size_limit
    assert acc.rejected == {"552": acc.sent} and acc.accepted == 0, (acc, load.errors)
    assert (acc.lost, acc.pending) == (0, 0)
