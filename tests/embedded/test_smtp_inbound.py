"""The inbound MX: local delivery, no open relay, DNSBL, SPF, DMARC quarantine, GTUBE,
SIZE, VRFY/EXPN, banner, over-long commands and bare line ends."""

from __future__ import annotations

import smtplib
import socket
import ssl

import aiosmtplib
import pytest

from maildrill.target import Target

from .conftest import DOMAIN, port
from .helpers import imap_fetch, message, send, token

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _refusal(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        exc = exc.recipients[0]
    assert isinstance(exc, aiosmtplib.SMTPResponseException), exc
    return exc.code, exc.message


def test_delivers_to_inbox_byte_identical(
    target: Target, tls: ssl.SSLContext, password: str
) -> None:
    subject = token()
    data = message(subject)
    errors, reply = send(target, "smtp", f"alice@{DOMAIN}", [f"user0001@{DOMAIN}"], data)
    assert errors == {} and reply.startswith("2.0.0"), reply
    stored = imap_fetch(target, tls, password, subject)
    junk = None if stored else imap_fetch(target, tls, password, subject, folder="Junk")
    assert stored is not None, f"not in INBOX; in Junk: {junk!r}"
    assert stored.endswith(data)  # S3: byte-identical after the headers the MX adds
    assert b"spf=pass" in stored and b"dmarc=pass" in stored


def test_unknown_local_user_refused(target: Target) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        send(target, "smtp", f"alice@{DOMAIN}", [f"nobody@{DOMAIN}"], message(token()))
    code, text = _refusal(info.value)
    assert code == 550 and text.startswith("5.1.1")


def test_not_an_open_relay(target: Target) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        send(target, "smtp", f"alice@{DOMAIN}", ["victim@relay-test.invalid"], message(token()))
    code, text = _refusal(info.value)
    assert code == 554 and text.startswith("5.7.1")


def test_gtube_rejected_at_end_of_data(target: Target) -> None:
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        send(
            target, "smtp", f"alice@{DOMAIN}", [f"user0001@{DOMAIN}"], message(token(), body=GTUBE)
        )
    assert info.value.code == 554 and info.value.message.startswith("5.7.1")


def test_dnsbl_listed_client_refused(target: Target) -> None:
    # Linux routes all of 127/8 on lo: binding to 127.0.0.2 makes a "listed" client
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        send(
            target,
            "smtp",
            f"alice@{DOMAIN}",
            [f"user0001@{DOMAIN}"],
            message(token()),
            source_address=("127.0.0.2", 0),
        )
    code, text = _refusal(info.value)
    assert code == 554 and text.startswith("5.7.1") and "dnsbl" in text


def test_spf_fail_refused(target: Target) -> None:
    # S12: 127.0.0.5 is not in v=spf1 ip4:127.0.0.1 -all
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        send(
            target,
            "smtp",
            f"alice@{DOMAIN}",
            [f"user0001@{DOMAIN}"],
            message(token()),
            source_address=("127.0.0.5", 0),
        )
    code, text = _refusal(info.value)
    assert code == 550 and text.startswith("5.7.23")


def test_dmarc_failure_quarantined_to_junk(
    target: Target, tls: ssl.SSLContext, password: str
) -> None:
    # S13: From: our domain, but neither SPF-aligned nor DKIM-signed -> Junk
    subject = token()
    send(target, "smtp", "bounce@elsewhere.invalid", [f"user0001@{DOMAIN}"], message(subject))
    assert imap_fetch(target, tls, password, subject) is None
    junk = imap_fetch(target, tls, password, subject, folder="Junk")
    assert junk is not None and b"dmarc=fail" in junk


def test_dialogue(target: Target) -> None:
    with smtplib.SMTP("127.0.0.1", port(target, "smtp"), timeout=10) as smtp:
        code, ehlo = smtp.ehlo("client.test")
        assert code == 250
        assert b"SIZE 10485760" in ehlo and b"STARTTLS" in ehlo and b"AUTH" not in ehlo
        assert target.expect.max_message_size == 10485760
        code, _ = smtp.docmd("VRFY", f"user0001@{DOMAIN}")
        assert code == 252  # RFC 5321 §3.5.3: does not confirm users
        code, _ = smtp.docmd("EXPN", "staff")
        assert code == 502
        code, text = smtp.docmd("MAIL", f"FROM:<a@{DOMAIN}> SIZE=20000000")
        assert code == 552, text


def test_banner_has_no_version(target: Target) -> None:
    with socket.create_connection(("127.0.0.1", port(target, "smtp")), timeout=5) as s:
        banner = s.recv(1024)
    assert banner == f"220 mx1.{DOMAIN} ESMTP\r\n".encode()


def test_overlong_mail_from_answered_and_server_stays_up(target: Target) -> None:
    # S18: MAIL FROM: followed by 1000+ characters
    with smtplib.SMTP("127.0.0.1", port(target, "smtp"), timeout=10) as smtp:
        smtp.ehlo("client.test")
        code, text = smtp.docmd("MAIL", "FROM:<" + "a" * 1200 + f"@{DOMAIN}>")
        assert code == 500 and text.startswith(b"5.5.2"), text
        assert smtp.noop()[0] == 250
    with smtplib.SMTP("127.0.0.1", port(target, "smtp"), timeout=10) as smtp:
        assert smtp.noop()[0] == 250


def _chat(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    reply = b""
    while not reply.endswith(b"\r\n") or reply.split(b"\r\n")[-2][3:4] == b"-":
        reply += sock.recv(4096)
    return reply


def test_bare_lf_dot_is_not_end_of_data(target: Target, tls: ssl.SSLContext, password: str) -> None:
    # RFC 5321 §4.1.1.4: only CRLF.CRLF ends the data (SMTP smuggling defence)
    subject = token()
    with socket.create_connection(("127.0.0.1", port(target, "smtp")), timeout=10) as s:
        s.recv(1024)
        assert _chat(s, b"EHLO client.test\r\n").startswith(b"250")
        assert _chat(s, f"MAIL FROM:<alice@{DOMAIN}>\r\n".encode()).startswith(b"250")
        assert _chat(s, f"RCPT TO:<user0001@{DOMAIN}>\r\n".encode()).startswith(b"250")
        assert _chat(s, b"DATA\r\n").startswith(b"354")
        head = f"From: alice@{DOMAIN}\r\nSubject: {subject}\r\n\r\n".encode()
        body = b"one\n.\nafter-lf\r\n.\rafter-cr\r\nend\r\n.\r\n"
        assert _chat(s, head + body).startswith(b"250")
    stored = imap_fetch(target, tls, password, subject)
    assert stored is not None and b"after-lf" in stored and b"after-cr" in stored


def test_starttls_offered_and_works(target: Target, tls: ssl.SSLContext, password: str) -> None:
    subject = token()
    errors, _ = send(
        target,
        "smtp",
        f"alice@{DOMAIN}",
        [f"user0001@{DOMAIN}"],
        message(subject),
        start_tls=True,
        tls_context=tls,
    )
    assert errors == {}
    assert imap_fetch(target, tls, password, subject) is not None


def test_oversized_message_refused(target: Target) -> None:
    # RFC 1870: the advertised SIZE is enforced even when the client does not declare one
    limit = target.expect.max_message_size
    assert limit is not None
    line = b"x" * 998 + b"\r\n"
    body = message(token()) + line * (limit // len(line) + 10)
    with socket.create_connection(("127.0.0.1", port(target, "smtp")), timeout=30) as s:
        s.recv(1024)
        assert _chat(s, b"EHLO client.test\r\n").startswith(b"250")
        assert _chat(s, f"MAIL FROM:<alice@{DOMAIN}>\r\n".encode()).startswith(b"250")
        assert _chat(s, f"RCPT TO:<user0001@{DOMAIN}>\r\n".encode()).startswith(b"250")
        assert _chat(s, b"DATA\r\n").startswith(b"354")
        reply = _chat(s, body + b".\r\n")
        assert reply.startswith(b"552 5.3.4"), reply
        assert _chat(s, b"NOOP\r\n").startswith(b"250")
