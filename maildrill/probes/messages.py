"""Test messages for the behavioural checks, each with its own token.

A token goes into the Subject and the Message-ID, so a check finds exactly the message it
sent (IMAP ``SEARCH SUBJECT``) and deletes exactly that one.

Usage::

    msg = build("clean", sender="probe@relay-test.invalid", recipient="user0001@example.test")
    msg.token, msg.data          # "md-3f9c…", b"From: …\\r\\n…"
"""

from __future__ import annotations

import base64
import email.utils
import uuid
from dataclasses import dataclass
from typing import Literal

__all__ = ["EICAR", "GTUBE", "Kind", "TestMessage", "build", "new_token"]

# SpamAssassin's Generic Test for Unsolicited Bulk Email: every content filter scores it as spam
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# the EICAR anti-malware test file (68 bytes, harmless by design)
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

Kind = Literal["clean", "gtube", "eicar", "plain"]

_CLEAN_BODY = (
    "Hello,\r\n\r\n"
    "this is the quarterly reminder about the team meeting on Thursday at ten in the\r\n"
    "second floor room. Please bring the figures for the capacity review and the notes\r\n"
    "from the last change-management board.\r\n\r\n"
    "Regards,\r\nthe operations team\r\n"
)


def new_token() -> str:
    """A token unique to one test message (also valid in a Message-ID and an IMAP search)."""
    return f"md-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class TestMessage:
    token: str
    data: bytes  # CRLF line ends, not dot-stuffed

    __test__ = False  # not a pytest test class despite the name


def build(
    kind: Kind,
    *,
    sender: str,
    recipient: str,
    header_from: str | None = None,
    token: str | None = None,
    extra_body: str = "",
) -> TestMessage:
    """A complete RFC 5322 message of ``kind`` with a fresh token in Subject and Message-ID.

    ``header_from`` differs from ``sender`` for spoofing probes (DMARC checks the header).
    """
    token = token or new_token()
    author = header_from or sender
    domain = author.rpartition("@")[2] or "maildrill.invalid"
    headers = [
        f"From: <{author}>",
        f"To: <{recipient}>",
        f"Subject: maildrill probe {token}",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: <{token}@{domain}>",
        "MIME-Version: 1.0",
    ]
    if kind == "eicar":
        boundary = f"=_{token}"
        attachment = base64.b64encode(EICAR.encode()).decode()
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        body = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"The attached file is the EICAR anti-virus test file.\r\n{extra_body}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream; name=eicar.com\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=eicar.com\r\n\r\n"
            f"{attachment}\r\n--{boundary}--\r\n"
        )
    else:
        headers.append("Content-Type: text/plain; charset=us-ascii")
        if kind == "gtube":
            body = f"This message carries the GTUBE test string.\r\n\r\n{GTUBE}\r\n"
        elif kind == "clean":
            body = _CLEAN_BODY
        else:
            body = f"maildrill behavioural probe {token}.\r\n"
        body += extra_body
    data = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("ascii")
    return TestMessage(token, data)
