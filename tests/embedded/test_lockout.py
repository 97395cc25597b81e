"""Seed S17 (fail2ban maxretry = 3): after three failed logins a source is refused on
every protocol, even with the right password. Uses the target's lockout_source."""

from __future__ import annotations

import socket
import ssl

import aiosmtplib
import pytest

from maildrill.target import Target

from .conftest import DOMAIN, port
from .helpers import message, send, token


def _smtp_login(target: Target, tls: ssl.SSLContext, source: str, password: str) -> None:
    send(
        target,
        "smtps",
        f"user0001@{DOMAIN}",
        [f"user0001@{DOMAIN}"],
        message(token()),
        use_tls=True,
        tls_context=tls,
        username="user0001",
        password=password,
        source_address=(source, 0),
    )


def _imap_login(target: Target, tls: ssl.SSLContext, source: str, password: str) -> bytes:
    with (
        socket.create_connection(
            ("127.0.0.1", port(target, "imaps")), timeout=10, source_address=(source, 0)
        ) as raw,
        tls.wrap_socket(raw) as conn,
    ):
        conn.recv(4096)  # greeting
        conn.sendall(f'a LOGIN user0001 "{password}"\r\n'.encode())
        reply = b""
        while b"a " not in reply:
            reply += conn.recv(4096)
        return reply


def test_three_failures_lock_the_source_out(
    target: Target, tls: ssl.SSLContext, password: str
) -> None:
    source = target.expect.lockout_source
    assert source is not None and target.expect.lockout_after == 3
    # the right password works before any failure
    assert b"a OK" in _imap_login(target, tls, source, password)
    for _ in range(3):
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            _smtp_login(target, tls, source, "wrong")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as info:
        _smtp_login(target, tls, source, password)
    assert info.value.code == 454
    assert b"a NO" in _imap_login(target, tls, source, password)
    # other sources are not affected
    _smtp_login(target, tls, "127.0.0.1", password)
