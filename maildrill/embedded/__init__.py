"""The embedded target: a small but policy-enforcing mail system for demos and tests.

:func:`launch` runs ``maildrill serve`` in a **subprocess** (never in the caller: the load
generator runs gevent, which must not share a process with an asyncio server) and yields
the target file once every service listens.

Usage::

    from maildrill.embedded import launch
    from maildrill.target import load_target

    with launch(Path("/tmp/lab"), accounts=5) as target_file:
        target = load_target(target_file)
        ...
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from maildrill.errors import TargetUnreachable

__all__ = ["launch"]

STARTUP_TIMEOUT = 60.0  # two RSA keys plus the CA: a few seconds on a slow box


@contextlib.contextmanager
def launch(
    dir: Path,
    accounts: int = 20,
    *,
    domain: str = "example.test",
    timeout: float = STARTUP_TIMEOUT,
    mailbox_starttls: bool = True,
) -> Iterator[Path]:
    """Start the embedded target in a child process; yield its target file; stop it.
    ``mailbox_starttls=False``: plain IMAP and POP3 offer no STARTTLS (``serve
    --no-mailbox-starttls``).

    Raises :class:`~maildrill.errors.TargetUnreachable` with the child's stderr if it
    exits or does not become ready within ``timeout`` seconds.

    Example::

        with launch(tmp_path) as target_file:
            subprocess.run(["maildrill", "check", "--target", str(target_file)])
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    target_file = dir / "target.toml"
    target_file.unlink(missing_ok=True)
    log_path = dir / "serve.log"
    cmd = [
        sys.executable,
        "-m",
        "maildrill",
        "serve",
        "--dir",
        str(dir),
        "--accounts",
        str(accounts),
        "--domain",
        domain,
        "--write-target",
        str(target_file),
        "--exit-with-parent",
    ]
    if not mailbox_starttls:
        cmd.append("--no-mailbox-starttls")
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + timeout
        while not target_file.exists():
            code = child.poll()
            if code is not None:
                raise TargetUnreachable(
                    f"embedded target exited with code {code} before it was ready; "
                    f"stderr:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise TargetUnreachable(
                    f"embedded target not ready after {timeout:.0f} s; stderr:\n{_tail(log_path)}"
                )
            time.sleep(0.05)
        yield target_file
    finally:
        _stop(child)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


if os.name != "posix":  # pragma: no cover
    raise ImportError("the embedded target needs a POSIX system")
