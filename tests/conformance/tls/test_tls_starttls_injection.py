"""STARTTLS-INJECTION both ways: an SMTP server that runs a command pipelined in plaintext
behind STARTTLS once TLS is up (CVE-2011-0411) fails it; the same server discarding the
buffered bytes, as RFC 3207 §4.2 requires, passes."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from tests.conformance.scripted import Connection, Listener
from tests.conformance.suite import run_suites
from tests.conformance.tls.pki import make_pki

# the fixed replies; any other command but EHLO and STARTTLS gets 502
_CANNED = {"NOOP": "250 2.0.0 ok", "RSET": "250 2.0.0 ok", "QUIT": "221 2.0.0 bye"}


def _smtp(vulnerable: bool, conn: Connection) -> None:
    """A minimal ESMTP server with STARTTLS; ``vulnerable`` keeps the plaintext buffer."""
    conn.send("220 mx.example.test ESMTP")
    while (line := conn.read_line()) is not None:
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            extensions = [] if conn.tls else ["250-STARTTLS"]
            conn.send("250-mx.example.test", *extensions, "250 8BITMIME")
        elif verb == "STARTTLS" and not conn.tls:
            conn.send("220 2.0.0 ready to start TLS")
            # RFC 3207 §4.2: forget everything from before TLS, unless modelling CVE-2011-0411
            conn.start_tls(keep_buffer=vulnerable)
        else:
            conn.send(_CANNED.get(verb, "502 5.5.1 not implemented"))
            if verb == "QUIT":
                return


@contextmanager
def smtp_target(directory: Path, *, vulnerable: bool) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_pki(directory)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = Listener(partial(_smtp, vulnerable), ctx)
    path = directory / "target.toml"
    path.write_text(
        f'name = "starttls"\ndomain = "example.test"\nca_file = "{ca}"\n\n'
        f'[endpoints.smtp]\nurl = "smtp://127.0.0.1:{server.port}"\n',
        encoding="utf-8",
    )
    try:
        yield path
    finally:
        server.close()


@pytest.mark.parametrize(("vulnerable", "verdict"), [(False, "pass"), (True, "fail")])
def test_starttls_injection_both_ways(tmp_path: Path, vulnerable: bool, verdict: str) -> None:
    with smtp_target(tmp_path / f"vulnerable-{vulnerable}", vulnerable=vulnerable) as target:
        run = run_suites(target, tmp_path)
    control = "STARTTLS-INJECTION[smtp]"
    assert run.controls[control]["verdict"] == verdict, run.describe({control})
    if vulnerable:
        assert "NOOP" in run.controls[control]["reason"], run.describe({control})
