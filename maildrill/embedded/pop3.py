"""A small asyncio POP3 server (RFC 1939, CAPA of RFC 2449, STLS of RFC 2595) on each
account's Maildir INBOX.

No POP3 server library on PyPI is both maintained and asyncio-based, so this one is ours;
it keeps to the commands the lab needs: CAPA STLS USER PASS STAT LIST UIDL RETR TOP DELE
RSET NOOP QUIT. On the plain port USER/PASS are refused until STLS (RFC 2595 §4 lets a
server require it), unless the lab is started without STLS (``offer_stls=False``, a weak
target for tests): then USER/PASS go in plain text. Deletions happen at QUIT only (RFC 1939
§6, UPDATE state).

Usage::

    server = await start_pop3(store, tls_ctx, implicit_tls=False, hostname="pop3.example.test")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from maildrill.embedded.maildir import Store
from maildrill.embedded.starttls import discard_plaintext

__all__ = ["start_pop3"]

log = logging.getLogger(__name__)

MAX_LINE = 512  # RFC 2449 §4: commands up to 255 octets; allow slack, then refuse
MAX_BAD = 10  # unknown/malformed commands before the server hangs up


@dataclass
class _Drop:
    """The maildrop as locked at PASS: numbered messages and deletion marks."""

    keys: list[str]
    paths: dict[str, Path]
    sizes: dict[str, int]
    deleted: set[int] = field(default_factory=set)

    def live(self) -> list[int]:
        return [n for n in range(1, len(self.keys) + 1) if n not in self.deleted]


def _load_drop(maildir: Path) -> _Drop:
    entries: list[tuple[str, Path]] = []
    for sub in ("cur", "new"):
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(maildir / sub):
                if entry.is_file():
                    entries.append((entry.name.split(":", 1)[0], Path(entry.path)))
    entries.sort()  # Maildir names start with the delivery time: oldest first
    keys = [k for k, _ in entries]
    paths = dict(entries)
    sizes = {}
    for key, path in entries:
        try:
            sizes[key] = path.stat().st_size
        except FileNotFoundError:  # moved new/ -> cur/ by IMAP meanwhile; found again on read
            sizes[key] = 0
    return _Drop(keys, paths, sizes)


def _locate(drop: _Drop, key: str) -> Path | None:
    """The message file now: an IMAP session may have moved it from new/ to cur/."""
    path = drop.paths[key]
    if path.exists():
        return path
    maildir = path.parent.parent
    for sub in ("cur", "new"):
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(maildir / sub):
                if entry.name.split(":", 1)[0] == key:
                    drop.paths[key] = Path(entry.path)
                    return drop.paths[key]
    return None


def _read(drop: _Drop, key: str) -> bytes | None:
    path = _locate(drop, key)
    try:
        return None if path is None else path.read_bytes()
    except FileNotFoundError:
        return None


def _stuff(message: bytes, body_lines: int | None = None) -> bytes:
    """Multi-line response body: CRLF lines, dot-stuffed (RFC 1939 §3), ended by '.'."""
    lines = message.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if body_lines is not None:
        try:
            blank = lines.index(b"")
        except ValueError:
            blank = len(lines)
        lines = lines[: blank + 1 + body_lines]
    out = [b"." + ln if ln.startswith(b".") else ln for ln in lines]
    return b"\r\n".join([*out, b"."]) + b"\r\n"


class _Connection:
    def __init__(
        self,
        store: Store,
        tls: ssl.SSLContext,
        implicit_tls: bool,
        hostname: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        offer_stls: bool = True,
    ) -> None:
        self.store, self.tls, self.hostname = store, tls, hostname
        self.reader, self.writer = reader, writer
        self.secure = implicit_tls
        self.offer_stls = offer_stls and not implicit_tls
        self.user: str | None = None
        self.drop: _Drop | None = None
        self.local: str | None = None

    async def send(self, line: str | bytes) -> None:
        data = line.encode() + b"\r\n" if isinstance(line, str) else line
        self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        await self.send(f"+OK {self.hostname} POP3 ready")
        bad = 0
        while True:
            try:
                raw = await asyncio.wait_for(self.reader.readline(), timeout=600)
            except (TimeoutError, ValueError, ConnectionError):
                return  # idle too long, line over the buffer, or gone
            if not raw:
                return
            if len(raw) > MAX_LINE:
                await self.send("-ERR line too long")
                bad += 1
                continue
            parts = raw.decode("utf-8", "replace").strip().split(" ")
            command, args = parts[0].upper(), [p for p in parts[1:] if p]
            handler = getattr(self, f"do_{command.lower()}", None) if command.isalpha() else None
            if handler is None:
                bad += 1
                await self.send("-ERR unknown command")
                if bad >= MAX_BAD:
                    return
                continue
            if await handler(args) is False:
                return

    # -- AUTHORIZATION state -------------------------------------------------------------

    async def do_capa(self, args: list[str]) -> None:
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING"]
        if self.offer_stls and not self.secure:
            caps.append("STLS")
        if self._may_login() and self.drop is None:
            caps.append("USER")
        await self.send("+OK capability list follows\r\n" + "\r\n".join(caps) + "\r\n.")

    def _may_login(self) -> bool:
        # a server without STLS has nothing to require first: its logins are plain text
        return self.secure or not self.offer_stls

    async def do_stls(self, args: list[str]) -> None:
        if self.secure or self.drop is not None or not self.offer_stls:
            await self.send("-ERR command not permitted now")
            return
        await self.send("+OK begin TLS negotiation")
        discard_plaintext(self.reader)
        try:
            await self.writer.start_tls(self.tls)
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            log.info("POP3 STLS handshake failed: %s", exc)
            raise ConnectionResetError from exc
        self.secure = True
        self.user = None

    async def do_user(self, args: list[str]) -> None:
        if self.drop is not None:
            await self.send("-ERR already authenticated")
        elif not self._may_login():
            # RFC 2595 §4: a server may refuse plaintext passwords before STLS
            await self.send("-ERR [AUTH] use STLS before USER/PASS (cleartext logins refused)")
        elif len(args) != 1:
            await self.send("-ERR USER needs a name")
        else:
            self.user = args[0]
            await self.send("+OK send PASS")

    async def do_pass(self, args: list[str]) -> None:
        if self.drop is not None:
            await self.send("-ERR already authenticated")
            return
        if not self._may_login():
            await self.send("-ERR [AUTH] use STLS before USER/PASS (cleartext logins refused)")
            return
        if self.user is None:
            await self.send("-ERR USER first")
            return
        password = " ".join(args)  # RFC 1939 §7: the password may contain spaces
        peer = self.writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        if self.store.lockout.banned(ip):  # S17
            await self.send("-ERR [AUTH] too many failed logins; try later")
            return
        local = self.store.check_password(self.user, password, ip)
        self.user = None
        if local is None:
            await self.send("-ERR [AUTH] invalid login")
            return
        self.local = local
        self.drop = _load_drop(self.store.maildir(local))
        n = len(self.drop.keys)
        await self.send(f"+OK {local} has {n} messages")

    async def do_quit(self, args: list[str]) -> bool:
        if self.drop is not None:
            for number in sorted(self.drop.deleted):
                path = _locate(self.drop, self.drop.keys[number - 1])
                if path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        await self.send(f"+OK {self.hostname} signing off")
        return False

    async def do_noop(self, args: list[str]) -> None:
        if await self._authed():
            await self.send("+OK")

    # -- TRANSACTION state ---------------------------------------------------------------

    async def _authed(self) -> bool:
        if self.drop is None:
            await self.send("-ERR not authenticated")
            return False
        return True

    async def _number(self, arg: str) -> int | None:
        assert self.drop is not None
        if arg.isdigit() and 1 <= int(arg) <= len(self.drop.keys):
            number = int(arg)
            if number not in self.drop.deleted:
                return number
            await self.send("-ERR message deleted")
            return None
        await self.send("-ERR no such message")
        return None

    async def do_stat(self, args: list[str]) -> None:
        if await self._authed():
            assert self.drop is not None
            live = self.drop.live()
            size = sum(self.drop.sizes[self.drop.keys[n - 1]] for n in live)
            await self.send(f"+OK {len(live)} {size}")

    async def _listing(self, args: list[str], value: str) -> None:
        if not await self._authed():
            return
        drop = self.drop
        assert drop is not None

        def item(n: int) -> str:
            key = drop.keys[n - 1]
            return f"{n} {drop.sizes[key] if value == 'size' else key}"

        if args:
            number = await self._number(args[0])
            if number is not None:
                await self.send(f"+OK {item(number)}")
            return
        lines = [item(n) for n in drop.live()]
        await self.send("\r\n".join(["+OK", *lines, "."]))

    async def do_list(self, args: list[str]) -> None:
        await self._listing(args, "size")

    async def do_uidl(self, args: list[str]) -> None:
        await self._listing(args, "uid")

    async def _retrieve(self, args: list[str], body_lines: int | None) -> None:
        if not await self._authed():
            return
        assert self.drop is not None
        if not args:
            await self.send("-ERR message number required")
            return
        number = await self._number(args[0])
        if number is None:
            return
        data = _read(self.drop, self.drop.keys[number - 1])
        if data is None:
            await self.send("-ERR message vanished")
            return
        await self.send(f"+OK {len(data)} octets")
        await self.send(_stuff(data, body_lines))

    async def do_retr(self, args: list[str]) -> None:
        await self._retrieve(args, None)

    async def do_top(self, args: list[str]) -> None:
        if len(args) != 2 or not args[1].isdigit():
            await self.send("-ERR usage: TOP msg n")
            return
        await self._retrieve(args[:1], int(args[1]))

    async def do_dele(self, args: list[str]) -> None:
        if not await self._authed():
            return
        assert self.drop is not None
        number = await self._number(args[0] if args else "")
        if number is not None:
            self.drop.deleted.add(number)
            await self.send(f"+OK message {number} deleted")

    async def do_rset(self, args: list[str]) -> None:
        if await self._authed():
            assert self.drop is not None
            self.drop.deleted.clear()
            await self.send(f"+OK maildrop has {len(self.drop.keys)} messages")


async def start_pop3(
    store: Store,
    tls: ssl.SSLContext,
    *,
    implicit_tls: bool,
    hostname: str,
    host: str = "127.0.0.1",
    offer_stls: bool = True,
) -> asyncio.Server:
    """Listen for POP3 (STLS required before USER/PASS; without ``offer_stls``, no STLS
    and plain-text logins) or POP3S on an ephemeral port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(store, tls, implicit_tls, hostname, reader, writer, offer_stls)
        try:
            await conn.run()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    return await asyncio.start_server(
        handle, host, 0, ssl=tls if implicit_tls else None, limit=64 * 1024
    )
