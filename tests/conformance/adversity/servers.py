"""Misbehaving mail servers on loopback for the verdict proofs (issue 10, case 7): one that
answers garbage from its first byte, one that greets and then hangs. Both hold every role of
a target file, the way one broken host behind every name would.

Usage::

    with misbehaving(directory, "garbage") as target_file:
        run_suites(target_file, directory, "reachability", "tls")
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conformance.scripted import Connection, Listener
from tests.conformance.tls.pki import make_pki

__all__ = ["BEHAVIOURS", "misbehaving"]

# RFC 5321 §4.2: a reply is three digits first; this is not even UTF-8 (sslyze's
# opportunistic-TLS helper decodes a non-220 greeting as UTF-8 and crashed on it)
GARBAGE = b"\x00\xff\xfe?? \xc3\x28 not a mail server\r\n"
BEHAVIOURS = ("garbage", "hang_after_banner")


def _garbage(conn: Connection) -> None:
    conn.sock.sendall(GARBAGE)
    while conn.read_line() is not None:
        conn.sock.sendall(GARBAGE)


def _hang_after_banner(released: threading.Event, conn: Connection) -> None:
    conn.send("220 mx.example.test ESMTP")
    released.wait(300)  # reads nothing, answers nothing, until the test is over


@contextmanager
def misbehaving(
    directory: Path, behaviour: str, roles: tuple[str, ...] = ("smtp",)
) -> Iterator[Path]:
    """A server with ``behaviour`` and a target file naming it for each of ``roles``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_pki(directory)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    released = threading.Event()
    if behaviour == "garbage":
        listener = Listener(_garbage, ctx)
    else:
        listener = Listener(lambda conn: _hang_after_banner(released, conn), ctx)
    (directory / "passwords").write_text("not-used-by-these-servers\n", encoding="utf-8")
    lines = [
        f'name = "{behaviour}"\ndomain = "example.test"\nca_file = "{ca}"\n',
        '[accounts]\npattern = "user{n}"\ncount = 3\npassword_file = "passwords"\n',
    ]
    for role in roles:
        lines.append(f'[endpoints.{role}]\nurl = "{role}://127.0.0.1:{listener.port}"\n')
    path = directory / "target.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        yield path
    finally:
        released.set()
        listener.close()
