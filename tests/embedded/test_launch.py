"""launch(): the target file is valid and complete; a dying child is reported clearly."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
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


def test_lab_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    # a test run killed with SIGKILL must not leave a lab holding ports behind
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from maildrill.embedded import launch\n"
        "with launch(Path(sys.argv[1]), accounts=1):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        assert (tmp_path / "target.toml").exists()
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 15
    while (tmp_path / "target.toml").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tmp_path / "target.toml").exists(), "the orphaned lab kept running"
