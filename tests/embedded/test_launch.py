"""launch(): the target file is valid and complete; a dying child is reported clearly."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from maildrill.embedded import launch
from maildrill.errors import TargetUnreachable
from maildrill.target import Role, Target


def test_target_file_lists_every_role(target: Target, lab: Path) -> None:
    assert set(target.endpoints) == set(Role) - {Role.WEBMAIL}
    for role in ("submission", "imap", "pop3"):
        endpoint = target.endpoint(role)
        assert endpoint is not None and endpoint.starttls_required
    assert target.dns.resolver is not None and target.ca_path is not None
    assert target.expect.spam_action == "reject" and target.expect.lockout_after == 3
    password_file = target.accounts.password_file
    assert password_file is not None
    assert stat.S_IMODE(target.resolve_path(password_file).stat().st_mode) == 0o600
    assert target.account(4).address == "user0005@example.test"


def test_child_failure_is_reported_with_its_stderr(tmp_path: Path) -> None:
    with pytest.raises(TargetUnreachable, match="--accounts"), launch(tmp_path, accounts=0):
        pass
