"""Plaintext pipelined after STARTTLS/STLS is discarded, not run inside TLS
(RFC 2595 §3.1, RFC 3207 §4.2; CVE-2011-0411)."""

from __future__ import annotations

import socket
import ssl

import pytest

from maildrill.target import Target

from .conftest import port

CASES = {
    # role: (command + injected command, the line after which TLS starts, probe, first reply)
    "imap": (b"a STARTTLS\r\nb NOOP\r\n", b"a OK", b"c NOOP\r\n", b"c OK"),
    "pop3": (b"STLS\r\nNOOP\r\n", b"+OK", b"CAPA\r\n", b"+OK capability"),
    "submission": (b"EHLO x\r\nSTARTTLS\r\nNOOP\r\n", b"Ready to start TLS", b"NOOP\r\n", b"250 "),
}


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("role", sorted(CASES))
def test_injected_plaintext_is_discarded(target: Target, tls: ssl.SSLContext, role: str) -> None:
    command, ready, probe, expected = CASES[role]
    with socket.create_connection(("127.0.0.1", port(target, role)), timeout=10) as raw:
        raw.recv(4096)  # greeting
        raw.sendall(command)  # the command and an injected one in one segment
        _read_until(raw, ready)
        with tls.wrap_socket(raw) as conn:
            conn.sendall(probe)
            first = _read_until(conn, b"\r\n")
        assert first.startswith(expected), f"answered the injected command: {first!r}"
