"""An IMAP probe that finds a test message by its token, reads it, and deletes it afterwards.

The probe logs in as one test account over IMAPS (or IMAP after STARTTLS), polls the given
folders until a message whose Subject carries the token appears or the deadline passes, and
on exit deletes every message it found (and any other carrying a token it was asked for),
so checks leave the test mailboxes as they found them.

Usage::

    with Mailbox(target, target.account(0)) as box:
        found = box.find(msg.token, folders=("INBOX", "Junk"), within=30)
        found.folder, found.header("Authentication-Results")
    box.transcript          # what was asked and answered, the password redacted
"""

from __future__ import annotations

import email.parser
import email.policy
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from maildrill.dnsrecords.resolver import endpoint_addresses
from maildrill.errors import ProtocolError, TargetTimeout, TargetUnreachable
from maildrill.target import Account, Endpoint, Role, Target
from maildrill.tls.context import tls_context
from maildrill.wire import raise_if_blocked

__all__ = ["JUNK", "Found", "Mailbox"]

JUNK = "Junk"  # the logical name; resolved to the server's \Junk folder (RFC 6154)
_JUNK_NAMES = ("junk", "spam", "junk e-mail", "inbox.junk", "inbox.spam", "inbox/junk")
POLL_S = 0.3


@dataclass(frozen=True)
class Found:
    """One message found by token: where, how long it took, and its bytes."""

    token: str
    folder: str
    uid: int
    after_s: float
    raw: bytes

    @property
    def headers(self) -> Message:
        parsed: Message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            self.raw
        )
        return parsed

    def header(self, name: str) -> list[str]:
        """Every value of header ``name``, unfolded."""
        return [" ".join(str(v).split()) for v in self.headers.get_all(name) or []]

    def header_block(self) -> str:
        end = self.raw.find(b"\r\n\r\n")
        return self.raw[: end if end >= 0 else len(self.raw)].decode("utf-8", "replace")


class Mailbox:
    """One logged-in IMAP session of a test account (see the module docstring)."""

    def __init__(self, target: Target, account: Account, *, timeout: float = 10.0) -> None:
        self.target = target
        self.account = account
        self.timeout = timeout
        self.transcript: list[str] = []
        self._client: IMAPClient | None = None
        self._junk: str | None = None
        self._to_delete: dict[str, set[str]] = {}  # token -> folders to clean

    # -- session ---------------------------------------------------------------------------

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        endpoint = self.target.endpoint(Role.IMAPS) or self.target.endpoint(Role.IMAP)
        if endpoint is None:
            raise TargetUnreachable("the target configures no imap or imaps endpoint")
        raise_if_blocked(endpoint)
        address, port = endpoint_addresses(self.target, endpoint)[0]
        # the probe connects to the node's address; the TLS suite checks names, the probe
        # checks only that the chain is the target's
        ctx = tls_context(self.target)
        ctx.check_hostname = False
        try:
            self._client = self._login(endpoint, address, port, ctx)
        except ssl.SSLCertVerificationError as exc:
            # the certificate is the CERT-* controls' subject; the mailbox is this probe's
            self._log(f"!: certificate rejected: {exc.verify_message}")
            self._log("*: going on without certificate verification (CERT-* own it)")
            self._client = self._login(
                endpoint, address, port, tls_context(self.target, verify=False)
            )

    def _login(
        self, endpoint: Endpoint, address: str, port: int, ctx: ssl.SSLContext
    ) -> IMAPClient:
        implicit = endpoint.implicit_tls
        self._log(f"*: connecting to {address}:{port} ({endpoint})")
        try:
            client = IMAPClient(
                address, port=port, ssl=implicit, ssl_context=ctx, timeout=self.timeout
            )
            if not implicit:
                self._log("C: STARTTLS")
                client.starttls(ctx)
            self._log(f"C: LOGIN {self.account.local} <redacted>")
            self._log(f"S: {_text(client.login(self.account.local, self.account.password))}")
        except ssl.SSLCertVerificationError:
            raise
        except (IMAPClientError, ssl.SSLError) as exc:
            self._log(f"!: {exc}")
            raise ProtocolError(f"IMAP probe as {self.account.local}: {exc}") from None
        except TimeoutError:
            raise TargetTimeout(f"IMAP probe: {endpoint} did not answer") from None
        except OSError as exc:
            raise TargetUnreachable(f"IMAP probe: {endpoint}: {exc}") from None
        return client

    def close(self) -> None:
        if self._client is None:
            return
        try:
            for token, folders in list(self._to_delete.items()):
                self.delete(token, folders)
            self._log("C: LOGOUT")
            self._client.logout()
        except (IMAPClientError, OSError, ssl.SSLError) as exc:
            self._log(f"!: while cleaning up: {exc}")
        finally:
            self._client = None

    # -- folders ---------------------------------------------------------------------------

    def junk_folder(self) -> str | None:
        """The server's Junk folder: the one flagged \\Junk (RFC 6154), else by name."""
        if self._junk is not None:
            return self._junk
        folders = self._imap().list_folders()
        for flags, _, name in folders:
            if b"\\Junk" in flags:
                self._junk = str(name)
                return self._junk
        for _, _, name in folders:
            if str(name).lower() in _JUNK_NAMES:
                self._junk = str(name)
                return self._junk
        return None

    def _resolve(self, folders: Iterable[str]) -> list[str]:
        out = []
        for folder in folders:
            name = self.junk_folder() if folder == JUNK else folder
            if name is not None and name not in out:
                out.append(name)
        return out

    # -- finding and deleting --------------------------------------------------------------

    def find(
        self, token: str, folders: Iterable[str] = ("INBOX", JUNK), *, within: float = 30.0
    ) -> Found | None:
        """The first message whose Subject carries ``token`` in any of ``folders``, polling
        until ``within`` seconds have passed; None if it never arrived. It is deleted when
        the probe closes."""
        names = self._resolve(folders)
        self._to_delete.setdefault(token, set()).update(names)
        self._log(f"*: waiting up to {within:g} s for SUBJECT {token} in {', '.join(names)}")
        t0 = time.monotonic()
        while True:
            for name in names:
                found = self._search(token, name, t0)
                if found is not None:
                    self._log(f"*: found in {name} after {found.after_s:.2f} s (UID {found.uid})")
                    return found
            if time.monotonic() - t0 > within:
                self._log(f"*: not found in {within:g} s")
                return None
            time.sleep(POLL_S)

    def absent(self, token: str, folders: Iterable[str] = ("INBOX", JUNK)) -> bool:
        """True if no message with ``token`` is in ``folders`` right now (deleted if any)."""
        names = self._resolve(folders)
        self._to_delete.setdefault(token, set()).update(names)
        return all(self._search(token, name, time.monotonic()) is None for name in names)

    def _search(self, token: str, folder: str, t0: float) -> Found | None:
        client = self._imap()
        try:
            client.select_folder(folder)
            uids = client.search(["SUBJECT", token])
        except IMAPClientError as exc:
            self._log(f"!: SEARCH in {folder}: {exc}")
            return None
        if not uids:
            return None
        uid = int(uids[0])
        self._log(f"C: UID FETCH {uid} BODY.PEEK[] ({folder})")
        data = client.fetch([uid], ["BODY.PEEK[]"])
        raw = _body(data.get(uid, {}))
        self._log(f"S: {len(raw)} bytes")
        return Found(token, folder, uid, round(time.monotonic() - t0, 3), raw)

    def delete(self, token: str, folders: Iterable[str]) -> int:
        """Delete every message carrying ``token`` in ``folders``; how many were deleted."""
        client = self._imap()
        count = 0
        for folder in folders:
            try:
                client.select_folder(folder)
                uids = client.search(["SUBJECT", token])
                if uids:
                    client.delete_messages(uids)
                    client.expunge()
                    count += len(uids)
                    self._log(f"C: delete {len(uids)} message(s) with {token} from {folder}")
            except IMAPClientError as exc:
                self._log(f"!: deleting from {folder}: {exc}")
        self._to_delete.pop(token, None)
        return count

    # -- helpers ---------------------------------------------------------------------------

    def _imap(self) -> IMAPClient:
        if self._client is None:
            raise ProtocolError("IMAP probe is not connected")
        return self._client

    def _log(self, line: str) -> None:
        self.transcript.append(line)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _body(item: dict[Any, Any]) -> bytes:
    for key, value in item.items():
        if isinstance(key, bytes) and key.startswith(b"BODY[") and isinstance(value, bytes):
            return value
    return b""
