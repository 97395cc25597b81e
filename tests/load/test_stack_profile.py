"""Message profiles against the good reference stack (real Postfix and Dovecot): a message
over Postfix's message_size_limit is a rejected copy counted with its reply code, not lost.

Brought up exactly as tests/stack does; without the Debian packages or root it skips on a
developer machine and fails in CI (CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.load import run_load
from tests.load.test_profile_runs import profile_file
from tests.stack.conftest import RunningStack, bring_up

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def good_stack() -> Iterator[RunningStack]:
    yield from bring_up("good")


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
