"""The lab's SMTP services on aiosmtpd: inbound MX (``smtp``), ``submission`` and ``smtps``.

Inbound: STARTTLS offered, no AUTH, mail only for local accounts (never an open relay),
DNSBL and SPF at RCPT, DKIM/DMARC and GTUBE at end of DATA, DMARC failures to Junk.
Submission: STARTTLS then AUTH required before MAIL; every message DKIM-signed; local
recipients delivered; foreign recipients accepted and **discarded with a log line** (the
lab has no outbound relay).

Usage::

    server = await start_smtp(Role.SMTP, ctx, store, policy, host="127.0.0.1")
    server.sockets[0].getsockname()[1]      # the ephemeral port
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
import weakref
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from maildrill.embedded.maildir import JUNK, Store
from maildrill.embedded.policy import Policy, is_gtube

__all__ = ["MAX_MESSAGE_SIZE", "start_smtp"]

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 10 * 1024 * 1024  # advertised with SIZE and enforced (RFC 1870)

# aiosmtpd's own replies lack RFC 3463 enhanced codes; add them (prefix -> replacement)
_REWRITES = (
    ("500 Command line too long", "500 5.5.2 Line too long"),
    ("500 Line too long", "500 5.5.2 Line too long (RFC 5321 section 4.5.3.1.6)"),
    ("530 Must issue a STARTTLS", "530 5.7.0 Must issue a STARTTLS command first"),
    ("552 Error: Too much mail data", "552 5.3.4 Message size exceeds fixed maximum"),
    ("552 Error: message size exceeds", "552 5.3.4 Message size exceeds fixed maximum"),
)


class _SMTP(SMTP):
    """aiosmtpd's SMTP with enhanced status codes on its built-in error replies."""

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        for prefix, replacement in _REWRITES:
            if text.startswith(prefix):
                await super().push(replacement)
                return
        await super().push(status)


def _peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else "127.0.0.1"


def _queue_id() -> str:
    return uuid.uuid4().hex[:12].upper()


class InboundHandler:
    """Hooks of the inbound MX (aiosmtpd handler protocol)."""

    def __init__(self, store: Store, policy: Policy, hostname: str) -> None:
        self.store = store
        self.policy = policy
        self.hostname = hostname
        # per-connection DNSBL verdict and per-transaction SPF result (aiosmtpd makes a
        # new Envelope for every transaction)
        self._dnsbl: weakref.WeakKeyDictionary[Session, str] = weakref.WeakKeyDictionary()
        self._spf: weakref.WeakKeyDictionary[Envelope, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        ip = _peer_ip(session)
        listed = self._dnsbl.get(session)
        if listed is None:
            listed = await asyncio.to_thread(self.policy.dnsbl, ip) or ""
            self._dnsbl[session] = listed
        if listed:
            return f"554 5.7.1 Service unavailable; client [{ip}] blocked using {listed}"
        if not self.store.is_local_domain(address):
            return "554 5.7.1 Relay access denied"
        if self.store.local_part(address) is None:
            return "550 5.1.1 Recipient address rejected: user unknown"
        # SPF at RCPT, after the cheaper checks, as Postfix policy services do; once per
        # transaction (the envelope is reset by MAIL/RSET)
        spf = self._spf.get(envelope)
        if spf is None:
            helo = session.host_name or ip
            spf = await asyncio.to_thread(self.policy.spf, ip, envelope.mail_from or "", helo)
            self._spf[envelope] = spf
        spf_result, why = spf
        if spf_result == "fail":  # -all (S12); RFC 7372 §3.2 code for an SPF failure
            sender = envelope.mail_from or "<>"
            return f"550 5.7.23 SPF check failed for {sender} from [{ip}]: {why}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = bytes(envelope.original_content or b"")
        if is_gtube(content):  # S15 content filter: reject, not tag (expect.spam_action)
            return "554 5.7.1 Message rejected as spam (GTUBE)"
        verdict = await asyncio.to_thread(
            self.policy.inbound,
            content,
            _peer_ip(session),
            envelope.mail_from or "",
            session.host_name or "",
            self.hostname,
            self._spf.get(envelope, ("none", ""))[0],
        )
        if verdict.dmarc == "fail" and verdict.dmarc_policy == "reject":
            return "550 5.7.1 Rejected by DMARC policy"
        folder = JUNK if verdict.quarantine else None  # S13 p=quarantine
        message = verdict.header + content
        queue_id = _queue_id()
        for rcpt in envelope.rcpt_tos:
            local = self.store.local_part(rcpt)
            if local is not None:
                self.store.deliver(local, message, folder)
        log.debug("inbound %s delivered to %d (%s)", queue_id, len(envelope.rcpt_tos), folder)
        return f"250 2.0.0 OK queued as {queue_id}"


class SubmissionHandler:
    """Hooks of the submission and smtps services."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.store.is_local_domain(address) and self.store.local_part(address) is None:
            return "550 5.1.1 Recipient address rejected: user unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = bytes(envelope.original_content or b"")
        if not _has_header(content, b"from"):
            # DKIM must sign From (RFC 6376 §5.4); add it from the envelope, as MSAs do
            content = f"From: <{envelope.mail_from}>\r\n".encode() + content
        try:
            signed = await asyncio.to_thread(self.policy.dkim_sign, content)
        except Exception as exc:  # dkimpy raises several unrelated types on bad input
            log.warning("DKIM signing failed: %s", exc)
            return "554 5.6.0 Message could not be signed"
        queue_id = _queue_id()
        for rcpt in envelope.rcpt_tos:
            local = self.store.local_part(rcpt)
            if local is not None:
                self.store.deliver(local, signed)
            else:
                # documented: the lab has no outbound relay; foreign mail is dropped here
                log.info("submission %s: discarding foreign recipient %s", queue_id, rcpt)
        return f"250 2.0.0 OK queued as {queue_id}"


def _has_header(message: bytes, name: bytes) -> bool:
    end = message.find(b"\r\n\r\n")
    head = message[: end if end >= 0 else len(message)].lower()
    return head.startswith(name + b":") or (b"\n" + name + b":") in head


class _Authenticator:
    """aiosmtpd authenticator: the account's login (local part or address) and password."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ip = _peer_ip(session)
        if self.store.lockout.banned(ip):  # S17
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Too many failed logins"
            )
        local = self.store.check_password(login, password, ip)
        return AuthResult(success=local is not None, handled=False, auth_data=local)


async def start_smtp(
    role: str,
    tls: Any,
    store: Store,
    policy: Policy,
    *,
    host: str = "127.0.0.1",
    hostname: str,
) -> asyncio.Server:
    """Listen for one SMTP role ("smtp", "submission" or "smtps") on an ephemeral port."""
    loop = asyncio.get_running_loop()
    common: dict[str, Any] = {
        "hostname": hostname,
        "ident": "ESMTP",  # no software name or version in the banner
        "data_size_limit": MAX_MESSAGE_SIZE,
        "decode_data": False,
        "timeout": 120,
    }
    if role == "smtp":
        inbound = InboundHandler(store, policy, hostname)

        def factory() -> SMTP:
            # no authenticator: AUTH is not offered on the MX
            return _SMTP(inbound, tls_context=tls, require_starttls=False, **common)

        return await loop.create_server(factory, host, 0)
    submission = SubmissionHandler(store, policy)
    authenticator = _Authenticator(store)
    if role == "submission":

        def factory() -> SMTP:
            return _SMTP(
                submission,
                tls_context=tls,
                require_starttls=True,
                auth_required=True,
                auth_require_tls=True,
                authenticator=authenticator,
                **common,
            )

        return await loop.create_server(factory, host, 0)
    if role == "smtps":
        # aiosmtpd warns, per connection, that AUTH without STARTTLS is unsafe; here the
        # whole connection is implicit TLS, so that warning does not apply
        warnings.filterwarnings(
            "ignore",
            message="Requiring AUTH while not requiring TLS",
            category=UserWarning,
            module="aiosmtpd.smtp",
        )

        def factory() -> SMTP:
            # implicit TLS: the channel is already encrypted, so AUTH needs no STARTTLS
            return _SMTP(
                submission,
                auth_required=True,
                auth_require_tls=False,
                authenticator=authenticator,
                **common,
            )

        return await loop.create_server(factory, host, 0, ssl=tls)
    raise ValueError(f"not an SMTP role: {role}")
