"""Client helpers shared by the embedded-target tests: send over SMTP, read over IMAP."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from typing import Any

import aiosmtplib
from imapclient import IMAPClient

from maildrill.target import Target

from .conftest import DOMAIN, port


def token() -> str:
    return uuid.uuid4().hex


def message(subject: str, sender: str = f"alice@{DOMAIN}", body: str = "hello") -> bytes:
    return (
        f"From: {sender}\r\nTo: user0001@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@{DOMAIN}>\r\n\r\n{body}\r\n"
    ).encode()


def send(
    target: Target,
    role: str,
    sender: str,
    recipients: list[str],
    data: bytes,
    **kwargs: Any,
) -> tuple[dict[str, Any], str]:
    """Send one message with aiosmtplib; returns (per-recipient errors, final reply)."""

    async def go() -> tuple[dict[str, Any], str]:
        kwargs.setdefault("start_tls", False)
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port(target, role), **kwargs)
        await smtp.connect()
        try:
            return await smtp.sendmail(sender, recipients, data)
        finally:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()
            # let a TLS transport finish closing before asyncio.run() closes the loop, or
            # its socket is left to the garbage collector (ResourceWarning -> error)
            await asyncio.sleep(0.05)

    return asyncio.run(go())


def imap_fetch(
    target: Target, tls: ssl.SSLContext, password: str, subject: str, folder: str = "INBOX"
) -> bytes | None:
    """The stored bytes of the message with ``subject`` in ``folder`` (STARTTLS, then login)."""
    client = IMAPClient("127.0.0.1", port=port(target, "imap"), ssl=False, timeout=10)
    try:
        client.starttls(tls)
        client.login("user0001", password)
        client.select_folder(folder, readonly=True)
        uids = client.search(["SUBJECT", subject])
        if not uids:
            return None
        data = client.fetch(uids, ["BODY.PEEK[]"])
        return bytes(data[uids[0]][b"BODY[]"])
    finally:
        client.logout()
