"""IMAP(S) on pymap and POP3(S): no cleartext logins before STARTTLS/STLS."""

from __future__ import annotations

import poplib
import ssl
import time

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from maildrill.target import Target

from .conftest import DOMAIN, port
from .helpers import message, send, token


def test_imap_logindisabled_before_starttls(target: Target, password: str) -> None:
    client = IMAPClient("127.0.0.1", port=port(target, "imap"), ssl=False, timeout=10)
    try:
        caps = client.capabilities()
        assert b"LOGINDISABLED" in caps and b"STARTTLS" in caps
        assert not any(c.startswith(b"AUTH=") for c in caps)
        with pytest.raises(LoginError):
            client.login("user0001", password)
    finally:
        client.shutdown()


def test_imaps_login_and_folders(target: Target, tls: ssl.SSLContext, password: str) -> None:
    with IMAPClient("127.0.0.1", port=port(target, "imaps"), ssl_context=tls, timeout=10) as c:
        c.login(f"user0001@{DOMAIN}", password)  # address or local part both log in
        names = {name for _, _, name in c.list_folders()}
        assert {"INBOX", "Junk"} <= names


def test_imap_wrong_password(target: Target, tls: ssl.SSLContext) -> None:
    with (
        IMAPClient("127.0.0.1", port=port(target, "imaps"), ssl_context=tls, timeout=10) as c,
        pytest.raises(LoginError),
    ):
        c.login("user0001", "wrong")


def test_pop3_refuses_user_before_stls(target: Target, password: str) -> None:
    pop = poplib.POP3("127.0.0.1", port(target, "pop3"), timeout=10)
    try:
        assert "STLS" in pop.capa()
        with pytest.raises(poplib.error_proto):
            pop.user("user0003")
    finally:
        pop.close()


def test_pop3_session(target: Target, tls: ssl.SSLContext, password: str) -> None:
    subjects = [token(), token()]
    for subject in subjects:
        send(target, "smtp", f"alice@{DOMAIN}", [f"user0003@{DOMAIN}"], message(subject))
    pop = poplib.POP3("127.0.0.1", port(target, "pop3"), timeout=10)
    pop.stls(tls)
    pop.user("user0003")
    pop.pass_(password)
    count, size = pop.stat()
    assert count >= 2 and size > 0
    listing = pop.list()[1]
    uidls = pop.uidl()[1]
    assert len(listing) == len(uidls) == count
    _, lines, _octets = pop.retr(count)
    assert f"Subject: {subjects[-1]}".encode() in lines
    _, top, _ = pop.top(count, 0)
    assert b"" in top and b"hello" not in top  # headers and the blank line only
    pop.dele(1)
    assert pop.stat()[0] == count - 1
    pop.rset()
    assert pop.stat()[0] == count
    pop.dele(1)
    pop.quit()
    # deletion takes effect at QUIT (RFC 1939 §6)
    pop = poplib.POP3_SSL("127.0.0.1", port(target, "pop3s"), context=tls, timeout=10)
    pop.user("user0003")
    pop.pass_(password)
    assert pop.stat()[0] == count - 1
    pop.quit()


def test_new_mail_visible_to_an_open_session(
    target: Target, tls: ssl.SSLContext, password: str
) -> None:
    # the lab caches Maildir scans between commands; a delivery must still show at once
    with IMAPClient("127.0.0.1", port=port(target, "imaps"), ssl_context=tls, timeout=10) as c:
        c.login("user0004", password)
        c.select_folder("INBOX")
        before = len(c.search(["ALL"]))
        for round_ in range(3):
            subject = token()
            send(target, "smtp", f"alice@{DOMAIN}", [f"user0004@{DOMAIN}"], message(subject))
            c.noop()
            assert len(c.search(["ALL"])) == before + round_ + 1
            assert c.search(["SUBJECT", subject])
        uid = c.search(["SUBJECT", subject])[0]
        c.add_flags([uid], [b"\\Flagged"])
        assert b"\\Flagged" in c.get_flags([uid])[uid]


def test_mail_delivered_during_idle_is_seen(
    target: Target, tls: ssl.SSLContext, password: str
) -> None:
    # pymap's IDLE rescans, waits, then lists: a delivery inside that wait must still show
    # on a later command (regression: the cached listing once hid it for good)
    with IMAPClient("127.0.0.1", port=port(target, "imaps"), ssl_context=tls, timeout=10) as c:
        c.login("user0005", password)
        c.select_folder("INBOX")
        for _ in range(3):
            subject = token()
            c.idle()
            time.sleep(0.2)
            send(target, "smtp", f"alice@{DOMAIN}", [f"user0005@{DOMAIN}"], message(subject))
            c.idle_check(timeout=1.5)
            c.idle_done()
            time.sleep(0.1)  # past the lab's 50 ms same-tick guard
            c.noop()
            assert c.search(["SUBJECT", subject]), "delivered during IDLE but never listed"
