"""Submission and SMTPS: STARTTLS before AUTH and MAIL, AUTH works, mail DKIM-signed."""

from __future__ import annotations

import smtplib
import ssl

import aiosmtplib
import dkim
import pytest

from maildrill.dnsrecords.resolver import resolver_for
from maildrill.mailauth import dkim_dnsfunc, resolver_txt
from maildrill.target import Target

from .conftest import DOMAIN, port
from .helpers import imap_fetch, message, send, token


def test_starttls_required_before_auth_and_mail(target: Target) -> None:
    with smtplib.SMTP("127.0.0.1", port(target, "submission"), timeout=10) as smtp:
        code, ehlo = smtp.ehlo("client.test")
        assert b"STARTTLS" in ehlo and b"AUTH" not in ehlo  # RFC 3207 §4, RFC 4954 §4
        code, text = smtp.docmd("MAIL", f"FROM:<user0001@{DOMAIN}>")
        assert code == 530 and text.startswith(b"5.7.0"), text
        code, text = smtp.docmd("AUTH", "PLAIN AHVzZXIwMDAxAHg=")
        assert code == 530, text


def test_auth_needed_after_starttls(target: Target, tls: ssl.SSLContext) -> None:
    with smtplib.SMTP("127.0.0.1", port(target, "submission"), timeout=10) as smtp:
        smtp.starttls(context=tls)
        code, ehlo = smtp.ehlo("client.test")
        assert b"AUTH" in ehlo and b"PLAIN" in ehlo and b"LOGIN" in ehlo
        code, text = smtp.docmd("MAIL", f"FROM:<user0001@{DOMAIN}>")
        assert code == 530, text
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("user0001", "wrong password")


@pytest.mark.parametrize("role", ["submission", "smtps"])
def test_submitted_mail_arrives_dkim_signed(
    target: Target, tls: ssl.SSLContext, password: str, role: str
) -> None:
    subject = token()
    kwargs = {"start_tls": True} if role == "submission" else {"use_tls": True, "start_tls": False}
    errors, _reply = send(
        target,
        role,
        f"user0002@{DOMAIN}",
        [f"user0001@{DOMAIN}", "friend@far-away.invalid"],  # foreign: accepted, discarded
        message(subject, sender=f"user0002@{DOMAIN}"),
        username="user0002",
        password=password,
        tls_context=tls,
        **kwargs,
    )
    assert errors == {}, errors
    stored = imap_fetch(target, tls, password, subject)
    assert stored is not None and stored.startswith(b"DKIM-Signature:")
    signature = dkim.DKIM(stored)
    dnsfunc = dkim_dnsfunc(resolver_txt(resolver_for(target)))
    assert signature.verify(dnsfunc=dnsfunc), "DKIM signature does not verify"
    assert signature.domain == DOMAIN.encode()
    assert signature.selector == target.dns.dkim_selectors[0].encode()


def test_smtps_requires_auth(target: Target, tls: ssl.SSLContext) -> None:
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
        send(
            target,
            "smtps",
            f"user0001@{DOMAIN}",
            [f"user0001@{DOMAIN}"],
            message(token()),
            use_tls=True,
            tls_context=tls,
        )
    assert info.value.code == 530
