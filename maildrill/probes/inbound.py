"""Send a test message to an SMTP endpoint, then look for it in a test mailbox.

One object per check keeps the SMTP and IMAP transcripts (live lists, so a check records
them as evidence before anything can fail) and deletes what it found on exit.

Usage::

    with Inbound(target, endpoint, target.account(0)) as probe:
        evidence.transcript("smtp", probe.smtp_transcript)
        evidence.transcript("imap", probe.imap_transcript)
        tx = probe.send(msg, sender="probe@relay-test.invalid")
        if tx.accepted:
            found = probe.find(msg.token, ("INBOX", JUNK))
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from maildrill.errors import NotApplicable
from maildrill.probes.mailbox import JUNK, Found, Mailbox
from maildrill.probes.messages import TestMessage
from maildrill.probes.smtp import (
    SmtpReplies,
    authenticate,
    delivery_timeout,
    open_session,
    transaction,
)
from maildrill.smtp_protocol import AUTH_SUCCEEDED
from maildrill.target import Account, Endpoint, Role, Target
from maildrill.wire import Wire

__all__ = ["Inbound", "has_mailbox", "require_mailbox", "spam_tag"]


def has_mailbox(target: Target) -> bool:
    """Whether the target gives an IMAP endpoint to read delivered mail from."""
    return target.endpoint(Role.IMAPS) is not None or target.endpoint(Role.IMAP) is not None


def require_mailbox(target: Target) -> None:
    """:class:`~maildrill.errors.NotApplicable` when the target gives no IMAP endpoint to
    read the delivered mail from (a check could only guess at what arrived)."""
    if not has_mailbox(target):
        raise NotApplicable("the target configures no imap or imaps endpoint to read mail from")


class Inbound:
    def __init__(
        self,
        target: Target,
        endpoint: Endpoint,
        account: Account,
        *,
        source: str | None = None,
    ) -> None:
        self.target = target
        self.endpoint = endpoint
        self.account = account
        self.source = source
        self.smtp_transcript: list[str] = []
        self.imap_transcript: list[str] = []
        self._box: Mailbox | None = None

    def __enter__(self) -> Inbound:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send(
        self,
        msg: TestMessage,
        *,
        sender: str,
        starttls: bool = False,
        login: Account | None = None,
    ) -> SmtpReplies:
        """One session: greeting, EHLO (STARTTLS, AUTH if asked), one transaction, QUIT."""
        with Wire.open(self.target, self.endpoint, source=self.source, timeout=60.0) as wire:
            self.smtp_transcript.extend(wire.transcript)
            wire.transcript = self.smtp_transcript
            open_session(wire, self.target, starttls=starttls)
            if login is not None:
                auth = authenticate(wire, login)
                if auth.code != AUTH_SUCCEEDED:
                    return SmtpReplies(auth)  # reported as refused at "MAIL"
            tx = transaction(wire, sender, [self.account.address], msg.data)
            wire.smtp("QUIT")
        return tx

    def mailbox(self) -> Mailbox:
        if self._box is None:
            box = Mailbox(self.target, self.account)
            box.transcript = self.imap_transcript
            box.open()
            self._box = box
        return self._box

    def find(
        self, token: str, folders: Iterable[str] = ("INBOX", JUNK), within: float | None = None
    ) -> Found | None:
        """Wait for the message with ``token`` (deleted when the probe closes)."""
        wait = delivery_timeout(self.target) if within is None else within
        return self.mailbox().find(token, folders, within=wait)

    def close(self) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None


def spam_tag(found: Found) -> str | None:
    """The header that marks ``found`` as spam (X-Spam-Flag/X-Spam-Status yes, a tagged
    Subject), or None."""
    for value in found.header("X-Spam-Flag"):
        if value.strip().upper().startswith("YES"):
            return f"X-Spam-Flag: {value}"
    for value in found.header("X-Spam-Status"):
        if value.strip().upper().startswith("YES"):
            return f"X-Spam-Status: {value[:80]}"
    for value in found.header("Subject"):
        if value.upper().startswith(("[SPAM]", "***SPAM***", "*****SPAM*****")):
            return f"Subject: {value}"
    return None
