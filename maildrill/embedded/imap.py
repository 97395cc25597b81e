"""IMAP and IMAPS on pymap's Maildir backend, over the lab's :class:`Store`.

pymap is embedded rather than run as its own daemon: the lab plugs in its own login (the
accounts of the Store, one Maildir++ each) and one change of behaviour — pymap allows
plaintext LOGIN from loopback clients, but every lab client is on loopback, so the plain
port must advertise LOGINDISABLED until STARTTLS like any production server (seed S14).

Usage::

    server = await start_imap(store, tls_ctx, implicit_tls=False, hostname="imap.example.test")
"""

from __future__ import annotations

import asyncio
import re
import ssl
from argparse import Namespace
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.maildir import Config, FilterSet, Identity, Session
from pymap.backend.maildir.mailbox import LoadedMessage, MailboxSet, Message
from pymap.exceptions import AuthorizationFailure, InvalidAuth, NotAllowedError
from pymap.imap import IMAPServer
from pymap.imap.state import ConnectionState
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.mime import MessageContent
from pymap.parsing.response import CommandResponse, ResponseOk
from pymap.parsing.specials.fetchattr import FetchRequirement
from pymap.token import AllTokens
from pysasl.hashing import BuiltinHash
from pysasl.identity import ClearIdentity

from maildrill.embedded.maildir import Store

__all__ = ["start_imap"]


_BARE_LF = re.compile(rb"(?<!\r)\n")


async def _load_content(self: Message, requirement: Any) -> LoadedMessage:
    """Serve the file's bytes as stored, with CRLF line ends (RFC 3501 §4.3).

    pymap reads a message through :mod:`mailbox`, whose email-package round trip turns
    CRLF into LF: clients then see other bytes than SMTP delivered (breaking DKIM and the
    seed's S3 byte-identity check). Files written by APPEND are LF-only; fix those ends.
    """
    if self._key is None or self._maildir is None or requirement.has_none(FetchRequirement.CONTENT):
        return LoadedMessage(self, requirement, None)
    try:
        raw = self._maildir.get_bytes(self._key)
    except (KeyError, FileNotFoundError):
        return LoadedMessage(self, requirement, None)
    return LoadedMessage(self, requirement, MessageContent.parse(_BARE_LF.sub(b"\r\n", raw)))


# the one behaviour of pymap's Maildir backend the lab replaces (see _load_content)
Message.load_content = _load_content  # type: ignore[method-assign]


class _Config(Config):
    """pymap's Maildir config with a greeting that names no software."""

    def __init__(self, *args: Any, hostname: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hostname = hostname

    @property
    def greeting(self) -> bytes:
        return f"{self._hostname} IMAP4rev1 ready".encode()


class _Identity(Identity):
    """One account; its Maildir is ``<store root>/<local part>``."""

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[Session]:
        maildir, layout = self._load_maildir(self.name)
        yield Session(self.name, self.config, MailboxSet(maildir, layout), FilterSet(layout.path))


class _Login(LoginInterface):
    def __init__(self, config: _Config, store: Store) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self._tokens = AllTokens(config)

    @property
    def tokens(self) -> AllTokens:
        return self._tokens

    async def authenticate(self, credentials: Any) -> _Identity:
        local = self.store.local_part(credentials.authcid)
        if local is None or not credentials.verify(
            ClearIdentity(credentials.authcid, self.store.password)
        ):
            raise InvalidAuth()
        return _Identity(self.config, self.tokens, local, None, frozenset())

    async def authorize(self, authenticated: IdentityInterface, authzid: str) -> _Identity:
        if authzid and self.store.local_part(authzid) != authenticated.name:
            raise AuthorizationFailure()
        return _Identity(self.config, self.tokens, authenticated.name, None, frozenset())


class _State(ConnectionState):
    async def do_greeting(self) -> CommandResponse:
        # pymap's own greeting switches loopback clients to the post-TLS mechanisms
        # (plaintext LOGIN allowed); the lab keeps LOGINDISABLED until STARTTLS
        if self.config.reject_dnsbl and getattr(self, "_dnsbl", None):
            raise NotAllowedError("Connection rejected")
        return ResponseOk(b"*", self.config.greeting, self.capability)


class _Server(IMAPServer):
    async def __call__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sock_info: Any
    ) -> None:
        from contextlib import AsyncExitStack, closing

        from pymap.context import connection_exit
        from pymap.imap import IMAPConnection

        conn = IMAPConnection(self.commands, self._config, reader, writer, sock_info)
        state = _State(self._login, self._config)
        async with AsyncExitStack() as stack:
            connection_exit.set(stack)
            stack.enter_context(closing(conn))
            await conn.run(state)


async def start_imap(
    store: Store,
    tls: ssl.SSLContext,
    *,
    implicit_tls: bool,
    hostname: str,
    host: str = "127.0.0.1",
) -> asyncio.Server:
    """Listen for IMAP (STARTTLS, LOGINDISABLED before it) or IMAPS on an ephemeral port."""
    args = Namespace(proxy_protocol=None, passlib_cfg=None, inherited_sockets=None)
    config = _Config(
        args,
        hostname=hostname,
        base_dir=str(store.root),
        layout="++",
        colon=None,
        host=host,
        port=0,
        ssl_context=tls,
        # tls_enabled means "offer STARTTLS"; on the implicit-TLS port there is nothing to
        # start, and pymap then offers the post-TLS mechanisms from the greeting on
        tls_enabled=not implicit_tls,
        hash_context=BuiltinHash(),
        invalid_user_sleep=0.0,
    )
    config.apply_context()
    server = _Server(_Login(config, store), config)
    callback = ProxyProtocolReader(config.proxy_protocol).get_callback(server)
    return await asyncio.start_server(
        callback, host, 0, ssl=tls if implicit_tls else None, limit=1024 * 1024
    )
