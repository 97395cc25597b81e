"""Session fixtures bringing the real reference stack up (good and weak) and down.

Both profiles run at once on their own loopback blocks (127.0.1.x, 127.0.2.x). Each is
started and stopped through the CLI, exactly as a user would; stopping asserts that no
process of the stack is left. Without the Debian packages (or root) the tests skip with a
loud reason on a developer machine and fail in CI (CI=true).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from maildrill.stack.binaries import INSTALL_SCRIPT, missing_binaries
from maildrill.stack.control import leftover_processes
from maildrill.stack.layout import default_block
from maildrill.target import Target, load_target

UP_BUDGET_S = 30.0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maildrill", "stack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _unavailable() -> str | None:
    missing = missing_binaries()
    if missing:
        return (
            f"reference stack unavailable: missing {', '.join(sorted(missing))} "
            f"(Debian packages {' '.join(sorted(set(missing.values())))}; run {INSTALL_SCRIPT})"
        )
    if os.geteuid() != 0:
        return "reference stack unavailable: needs root (Knot binds port 53, Postfix master)"
    return None


@dataclass(frozen=True)
class RunningStack:
    profile: str
    root: Path
    target: Target
    up_seconds: float
    up_output: str

    @property
    def host(self) -> str:  # every service of the stack listens here: .1 of its block
        address = self.target.dns.resolver_address
        assert address is not None
        return address[0].rsplit(".", 1)[0] + ".1"

    @property
    def password(self) -> str:
        return self.target.account(0).password


def _claim_block(profile: str) -> tuple[str, IO[str]]:
    """A loopback block no other stack uses, held by a lock file for the session.

    The profile's default block comes first (so CI uses 127.0.1 and 127.0.2); several test
    sessions on one machine move to 127.0.10 and up instead of colliding.
    """
    default = int(default_block("good" if profile == "good" else "weak").split(".")[2])
    for n in [default, *range(10, 250)]:
        block = f"127.0.{n}"
        lock = open(f"/tmp/maildrill-stack-{block}.lock", "w")  # noqa: SIM115 - held open
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        if not any(_listening(f"{block}.{h}", p) for h, p in ((53, 53), (1, 2525), (1, 2143))):
            return block, lock
        lock.close()  # a stack started by hand holds it
    pytest.fail("no free loopback block 127.0.N for a reference stack", pytrace=False)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def bring_up(profile: str, *weaknesses: str) -> Iterator[RunningStack]:
    """Start a stack through the CLI, yield it, stop it and check nothing is left."""
    reason = _unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(f"!!! {reason} !!!")
    # the daemons run unprivileged: the directory must be reachable by others (not 0700)
    root = Path(tempfile.mkdtemp(prefix=f"maildrill-stack-{profile}-", dir="/tmp"))
    root.chmod(0o755)
    block, lock = _claim_block(profile)
    t0 = time.monotonic()
    only = [arg for w in weaknesses for arg in ("--weakness", w)]
    up = _cli("up", "--profile", profile, *only, "--net", block, "--dir", str(root))
    up_seconds = time.monotonic() - t0
    if up.returncode != 0:
        lock.close()
        pytest.fail(f"stack up --profile {profile} failed: {up.stderr.strip()}", pytrace=False)
    try:
        yield RunningStack(profile, root, load_target(root / "target.toml"), up_seconds, up.stdout)
    finally:
        try:
            down = _cli("down", "--dir", str(root))
            left = leftover_processes(root)
        finally:
            lock.close()
        assert down.returncode == 0, down.stderr
        assert not left, f"processes of the {profile} stack still running: {left}"
        if "killed after timeout" in down.stdout:
            pytest.fail(f"{profile} stack needed SIGKILL: {down.stdout}", pytrace=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def good_stack() -> Iterator[RunningStack]:
    yield from bring_up("good")


@pytest.fixture(scope="session")
def weak_stack() -> Iterator[RunningStack]:
    yield from bring_up("weak")


@pytest.fixture(scope="session", params=["good", "weak"])
def stack(request: pytest.FixtureRequest) -> RunningStack:
    fixture: RunningStack = request.getfixturevalue(f"{request.param}_stack")
    return fixture


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # one_weakness (test_tls_conformance.py) brings a stack up of its own
    uses_stack = {"good_stack", "weak_stack", "stack", "partly_weak_stack", "one_weakness"}
    for item in items:
        if uses_stack & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
