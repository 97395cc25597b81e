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
import functools
import os
import re
import ssl
import time
from argparse import Namespace
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, closing
from typing import Any

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.maildir import Config, FilterSet, Identity, Session
from pymap.backend.maildir.mailbox import LoadedMessage, MailboxData, MailboxSet, Message
from pymap.backend.maildir.uidlist import UidList
from pymap.concurrent import Event
from pymap.context import connection_exit, socket_info
from pymap.exceptions import AuthorizationFailure, InvalidAuth
from pymap.imap import IMAPConnection, IMAPServer
from pymap.imap.state import ConnectionState
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.mime import MessageContent
from pymap.parsing.response import CommandResponse, ResponseOk
from pymap.parsing.specials import ObjectId
from pymap.parsing.specials.fetchattr import FetchRequirement
from pymap.selected import SelectedMailbox
from pymap.token import AllTokens
from pysasl import SASLAuth
from pysasl.hashing import BuiltinHash
from pysasl.identity import ClearIdentity

from maildrill.embedded.maildir import Store
from maildrill.embedded.starttls import discard_plaintext

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


# a directory changed this recently may change again within the same timestamp tick
# (Linux file times are jiffy-coarse), so its mtime cannot prove "unchanged" yet
_RACY_SECONDS = 0.05


class _MailboxData(MailboxData):
    """pymap's Maildir mailbox, minus the rescan of every file on every command.

    pymap re-lists and stats every message and rewrites the uidlist before each command
    (O(messages) per FETCH: 50 ms at 200 messages). Every change to a Maildir — delivery,
    flag change, expunge, new -> cur — renames or creates an entry in ``new/`` or
    ``cur/``, changing that directory's mtime; while both mtimes are unchanged (and not
    too recent to trust) the previous scan is still true and is reused.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reset_state: tuple[int, int] | None = None
        # bumped by every real reset(): the listing below reads the uidlist, which only
        # reset() updates, so a listing is current only for one disk state AND one reset
        self._generation = 0
        self._messages_state: tuple[int, int, int] | None = None
        self._messages_list: list[Message] = []
        self._by_uid: dict[int, Message] = {}

    def _state(self) -> tuple[int, int] | None:
        base = self._maildir._path
        new = os.stat(os.path.join(base, "new")).st_mtime_ns
        cur = os.stat(os.path.join(base, "cur")).st_mtime_ns
        if time.time_ns() - max(new, cur) < _RACY_SECONDS * 1e9:
            return None
        return new, cur

    async def reset(self) -> MailboxData:
        state = self._state()  # taken before the scan: a change during it shows next time
        if state is None or state != self._reset_state:
            await super().reset()
            self._generation += 1
            self._reset_state = state
        return self

    def _listing_key(self) -> tuple[int, int, int] | None:
        state = self._state()
        return None if state is None else (*state, self._generation)

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None
    ) -> SelectedMailbox:
        if wait_on is not None:
            await wait_on.wait(timeout=1.0)
        key = self._listing_key()
        if key is None or key != self._messages_state:
            self._messages_list = [msg async for msg in self.messages()]
            self._by_uid = {msg.uid: msg for msg in self._messages_list}
            self._messages_state = key
        selected.set_messages(list(self._messages_list))
        return selected

    async def get(self, uid: int, cached_msg: Any) -> Message:
        key = self._listing_key()
        if key is not None and key == self._messages_state and uid in self._by_uid:
            return self._by_uid[uid]  # same files as listed: skip the uidlist parse
        return await super().get(uid, cached_msg)


# one _MailboxData per folder path for the whole process: the scan it caches describes the
# files on disk, the same for every session (pymap's dict backend shares them likewise)
_SHARED: dict[str, _MailboxData] = {}


class _MailboxSet(MailboxSet):
    """One session's folders, built from the shared :class:`_MailboxData`."""

    async def get_mailbox(self, name: str) -> MailboxData:
        # as pymap's, but building _MailboxData (and so scanning once, not twice)
        path = self._layout.get_path(name, self.delimiter)
        if path not in _SHARED:
            if name == "INBOX":
                maildir = self._inbox_maildir
            else:
                try:
                    maildir = self._layout.get_folder(name, self.delimiter)
                except FileNotFoundError as exc:
                    raise KeyError(name) from exc
            async with UidList.with_init(path) as uidl:
                mailbox_id = ObjectId(uidl.global_uid)
            _SHARED.setdefault(path, _MailboxData(mailbox_id, maildir, path))
        return await _SHARED[path].reset()


class _Config(Config):
    """pymap's Maildir config with a greeting that names no software."""

    def __init__(self, *args: Any, hostname: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hostname = hostname

    @functools.cached_property
    def tls_auth(self) -> SASLAuth:
        # pymap builds this per use from entry points (importlib.metadata: ~6 ms a login)
        return SASLAuth.defaults()

    @property
    def greeting(self) -> bytes:
        return f"{self._hostname} IMAP4rev1 ready".encode()


class _Identity(Identity):
    """One account; its Maildir is ``<store root>/<local part>``."""

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[Session]:
        maildir, layout = self._load_maildir(self.name)
        yield Session(self.name, self.config, _MailboxSet(maildir, layout), FilterSet(layout.path))


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
        peer = socket_info.get().peername_ip
        ip = "" if peer is None else str(peer)
        if self.store.lockout.banned(ip):  # S17
            raise InvalidAuth("Too many failed logins; try later.")
        local = self.store.local_part(credentials.authcid)
        ok = local is not None and credentials.verify(
            ClearIdentity(credentials.authcid, self.store.password)
        )
        self.store.lockout.record(ip, ok=ok)
        if not ok or local is None:
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
        # (pymap's DNSBL rejection reads PROXY-protocol data the lab never receives)
        return ResponseOk(b"*", self.config.greeting, self.capability)


class _Connection(IMAPConnection):
    __slots__ = ()

    async def start_tls(self) -> None:
        discard_plaintext(self.reader)
        await super().start_tls()


class _Server(IMAPServer):
    async def __call__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sock_info: Any
    ) -> None:
        conn = _Connection(self.commands, self._config, reader, writer, sock_info)
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
    offer_starttls: bool = True,
) -> asyncio.Server:
    """Listen for IMAP (STARTTLS, LOGINDISABLED before it; without ``offer_starttls``, no
    STARTTLS and LOGIN in plain text) or IMAPS on an ephemeral port."""
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
        # start, and pymap then offers the post-TLS mechanisms from the greeting on; so it
        # does on a plain port without STARTTLS (a weak lab, for tests)
        tls_enabled=offer_starttls and not implicit_tls,
        hash_context=BuiltinHash(),
        invalid_user_sleep=0.0,
    )
    config.apply_context()
    server = _Server(_Login(config, store), config)
    callback = ProxyProtocolReader(config.proxy_protocol).get_callback(server)
    return await asyncio.start_server(
        callback, host, 0, ssl=tls if implicit_tls else None, limit=1024 * 1024
    )
