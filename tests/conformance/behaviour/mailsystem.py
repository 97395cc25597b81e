"""A small scripted mail system on loopback for the behavioural proofs, sound by default and
weak in exactly the ways a :class:`Flaws` names.

It speaks just enough SMTP, IMAP and POP3 for the hygiene checks: STARTTLS/STLS on the
plaintext ports, the implicit-TLS ports, AUTH on the submission ports, a SIZE limit, a relay
policy, VRFY/EXPN, and an IMAP INBOX that shows what SMTP accepted (HYG-SIZE and
HYG-SMUGGLING look there for what they got through, to delete it).

Usage::

    with mail_system(tmp_path, pki, Flaws(vrfy="confirms"), ALL_ROLES) as (target, system):
        ...  # run checks against the target file; system.inbox, system.relayed
"""

from __future__ import annotations

import base64
import re
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

from maildrill.target import IMPLICIT_TLS, Role
from tests.conformance.scripted import Connection, Listener
from tests.conformance.tls.pki import make_pki

DOMAIN = "example.test"
USER, PASSWORD = "user0001", "tiger-Lily-42"
LIMIT = 20_000  # the SIZE the sound server advertises and enforces, in bytes
LINE_LIMIT = 512  # RFC 5321 §4.5.3.1.4: a command line, CRLF included
END_OF_DATA = b"\r\n.\r\n"  # RFC 5321 §4.1.1.4: the only end of a message
GREETINGS = {
    "smtp": "220 mx.example.test ESMTP",
    "imap": "* OK mail.example.test IMAP4rev1 ready",  # a protocol name, not a version
    "pop3": "+OK mail.example.test POP3 ready",
}
PROTOCOL = {
    Role.SMTP: "smtp",
    Role.SUBMISSION: "smtp",
    Role.SMTPS: "smtp",
    Role.IMAP: "imap",
    Role.IMAPS: "imap",
    Role.POP3: "pop3",
    Role.POP3S: "pop3",
}
ALL_ROLES = tuple(PROTOCOL)
SUBMISSION_ROLES = (Role.SUBMISSION, Role.SMTPS)  # RFC 6409, RFC 8314: AUTH, then relay


@dataclass(frozen=True)
class Flaws:
    """What is wrong with the scripted system; the defaults make a sound one."""

    banners: Mapping[Role, str] = field(default_factory=dict)  # greetings that differ
    size_advertised: bool = True
    declared_size_refused: bool = True  # MAIL FROM:<…> SIZE=n over the limit: 552
    oversize_refused: bool = True  # a message over the limit: 552 at the end of data
    imap_login_before_tls: bool = False  # no LOGINDISABLED; LOGIN, AUTH=PLAIN in plaintext
    pop3_user_before_tls: bool = False  # CAPA USER; USER/PASS work before STLS
    mx_relays: bool = False  # the MX takes RCPT for any domain
    percent_hack: bool = False  # the MX routes local%foreign@own on to foreign
    submission_relays: bool = False  # the submission ports relay without AUTH
    # "cannot-verify": 252 for VRFY, 502 for EXPN, whoever is asked about (RFC 5321 §3.5.3)
    vrfy: Literal["cannot-verify", "confirms", "differs"] = "cannot-verify"
    # what an over-long command line gets: 500, taken as any other, the server dies at
    # once, or it answers 500 and then dies
    long_line: Literal["refused", "accepted", "crash", "refused, then crash"] = "refused"
    data_ends: tuple[bytes, ...] = (END_OF_DATA,)  # what ends DATA besides <CRLF>.<CRLF>
    auth_before_tls: Literal["refused", "advertised", "hidden"] = "refused"  # on submission


class MailSystem:
    """The scripted servers' protocols, sharing one INBOX (UID -> message)."""

    def __init__(self, flaws: Flaws) -> None:
        self.flaws = flaws
        self.inbox: dict[int, bytes] = {}
        self.deleted: set[int] = set()
        self.relayed: list[str] = []  # foreign recipients a message was accepted for
        self.listeners: list[Listener] = []
        self.next_uid = 1
        self.lock = threading.Lock()

    def serve(self, role: Role, ctx: ssl.SSLContext) -> Listener:
        kind = PROTOCOL[role]
        greeting = self.flaws.banners.get(role, GREETINGS[kind])
        protocol = {
            "smtp": partial(self.smtp, submission=role in SUBMISSION_ROLES),
            "imap": self.imap,
            "pop3": self.pop3,
        }[kind]
        implicit_tls = role in IMPLICIT_TLS
        listener = Listener(partial(protocol, greeting=greeting), ctx, implicit_tls=implicit_tls)
        self.listeners.append(listener)
        return listener

    def crash(self) -> None:
        """The whole system goes down: every port stops accepting."""
        for listener in self.listeners:
            listener.close()

    # -- SMTP (RFC 5321), SIZE (RFC 1870), AUTH (RFC 4954) -------------------------------------

    def smtp(self, conn: Connection, *, greeting: str, submission: bool) -> None:
        conn.send(greeting)
        authenticated = False
        rcpts: list[str] = []
        while (line := conn.read_line()) is not None:
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if len(line) + 2 > LINE_LIMIT and self.flaws.long_line != "accepted":
                if self.flaws.long_line != "crash":
                    conn.send("500 5.5.2 line too long")
                if self.flaws.long_line != "refused":  # an overflow takes the daemon down
                    self.crash()
                    return
            elif verb in ("EHLO", "HELO"):
                conn.send(*_multiline(250, self.ehlo_keywords(conn, submission)))
            elif verb == "STARTTLS" and not conn.tls:
                conn.send("220 2.0.0 ready to start TLS")
                conn.start_tls()
                authenticated = False  # RFC 3207 §4.2: forget everything from before
            elif verb == "AUTH":
                outcome = self.smtp_auth(conn, arg, submission)
                if outcome is None:
                    return
                authenticated = outcome
            elif verb == "MAIL":
                conn.send(self.mail(line, submission and not authenticated))
                rcpts = []
            elif verb == "RCPT":
                address = _path(arg)
                reply = self.rcpt(address, submission, authenticated)
                if reply.startswith("250"):
                    rcpts.append(address)
                conn.send(reply)
            elif verb == "DATA":
                if not rcpts:
                    conn.send("554 5.5.1 no valid recipients")
                    continue
                conn.send("354 end data with <CR><LF>.<CR><LF>")
                data = conn.read_until(*self.flaws.data_ends)
                if data is None:
                    return
                conn.send(self.end_of_data(data, rcpts))
                rcpts = []
            elif verb in ("VRFY", "EXPN"):
                conn.send(self.verify(verb, arg))
            elif verb == "QUIT":
                conn.send("221 2.0.0 bye")
                return
            elif verb in ("NOOP", "RSET"):
                rcpts = [] if verb == "RSET" else rcpts
                conn.send("250 2.0.0 ok")
            else:
                conn.send("502 5.5.1 not implemented")

    def ehlo_keywords(self, conn: Connection, submission: bool) -> list[str]:
        keywords = ["mx.example.test", "PIPELINING", "8BITMIME"]
        keywords += [] if conn.tls else ["STARTTLS"]
        if submission and (conn.tls or self.flaws.auth_before_tls == "advertised"):
            keywords += ["AUTH PLAIN LOGIN"]
        keywords += [f"SIZE {LIMIT}"] if self.flaws.size_advertised else []
        return keywords

    def smtp_auth(self, conn: Connection, arg: str, submission: bool) -> bool | None:
        """Whether the client logged in; None once it has gone."""
        mechanism, _, initial = arg.partition(" ")
        if not submission:
            conn.send("503 5.5.1 AUTH not available")  # an MX has no users to log in
            return False
        if not conn.tls and self.flaws.auth_before_tls == "refused":
            conn.send("530 5.7.0 Must issue a STARTTLS command first")  # RFC 3207 §4
            return False
        if mechanism.upper() != "PLAIN":
            conn.send("504 5.5.4 mechanism not supported")
            return False
        if not initial:
            conn.send("334 ")
            if (answer := conn.read_line()) is None:
                return None
            initial = answer
        if initial == "*":  # RFC 4954 §4: the client cancels
            conn.send("501 5.7.0 authentication cancelled")
            return False
        ok = _plain(initial) == (USER, PASSWORD)
        conn.send("235 2.7.0 authenticated" if ok else "535 5.7.8 invalid credentials")
        return ok

    def mail(self, line: str, needs_auth: bool) -> str:
        if needs_auth and not self.flaws.submission_relays:
            return "530 5.7.0 authentication required"  # RFC 4954 §6
        declared = re.search(r"\sSIZE=(\d+)", line, re.IGNORECASE)
        if declared and int(declared[1]) > LIMIT and self.flaws.declared_size_refused:
            return "552 5.3.4 message size exceeds fixed maximum message size"
        return "250 2.1.0 ok"

    def rcpt(self, address: str, submission: bool, authenticated: bool) -> str:
        local, _, domain = address.rpartition("@")
        if authenticated or (submission and self.flaws.submission_relays) or self.flaws.mx_relays:
            return "250 2.1.5 ok"
        if self.flaws.percent_hack and "%" in local and domain.lower() == DOMAIN:
            return "250 2.1.5 ok"  # sendmail's old routing: on to what follows the %
        # RFC 5321 §3.6.2: mail for other domains only from authenticated clients; a
        # quoted, routed or bang-path local part is another domain's address in disguise
        if domain.lower() != DOMAIN or not re.fullmatch(r"[A-Za-z0-9._+-]+", local):
            return "554 5.7.1 relay access denied"
        return "250 2.1.5 ok" if local.lower() == USER else "550 5.1.1 user unknown"

    def end_of_data(self, data: bytes, rcpts: list[str]) -> str:
        if len(data) > LIMIT and self.flaws.oversize_refused:
            return "552 5.3.4 message size exceeds fixed maximum message size"
        message = data.replace(b"\r\n..", b"\r\n.") + b"\r\n"  # RFC 5321 §4.5.2
        foreign = [r for r in rcpts if not r.lower().endswith(f"@{DOMAIN}")]
        with self.lock:
            self.relayed += foreign
            if len(foreign) < len(rcpts):  # a local recipient among them
                self.inbox[self.next_uid] = message
                self.next_uid += 1
        return "250 2.0.0 queued"

    def verify(self, verb: str, arg: str) -> str:
        known = _path(arg).lower() in (USER, f"{USER}@{DOMAIN}")
        if self.flaws.vrfy == "confirms":
            return f"250 2.1.5 User One <{USER}@{DOMAIN}>" if known else "550 5.1.1 user unknown"
        if self.flaws.vrfy == "differs":  # no 250, yet a missing user stands out
            return "252 2.5.2 cannot verify" if known else "550 5.1.1 user unknown"
        if verb == "EXPN":
            return "502 5.5.1 EXPN not available"
        return "252 2.5.2 cannot VRFY user, but will accept message and attempt delivery"

    # -- IMAP (RFC 9051) ---------------------------------------------------------------------

    def imap(self, conn: Connection, *, greeting: str) -> None:
        conn.send(greeting)
        logged_in = False
        while (line := conn.read_line()) is not None:
            tag, _, rest = line.partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            plaintext_ok = conn.tls or self.flaws.imap_login_before_tls
            if command == "CAPABILITY":
                caps = ["IMAP4rev1"] + ([] if conn.tls else ["STARTTLS"])
                caps += ["AUTH=PLAIN"] if plaintext_ok else ["LOGINDISABLED"]
                conn.send(f"* CAPABILITY {' '.join(caps)}", f"{tag} OK CAPABILITY completed")
            elif command == "STARTTLS" and not conn.tls:
                conn.send(f"{tag} OK begin TLS now")
                conn.start_tls()
            elif command in ("LOGIN", "AUTHENTICATE") and not plaintext_ok:
                # RFC 9051 §6.2.3: with LOGINDISABLED, LOGIN gets NO; RFC 5530 code
                conn.send(f"{tag} NO [PRIVACYREQUIRED] start TLS first")
            elif command == "LOGIN":
                logged_in = _imap_strings(args) == [USER, PASSWORD]
                conn.send(f"{tag} {_imap_login(logged_in)}")
            elif command == "AUTHENTICATE" and args.upper() == "PLAIN":
                conn.send("+ ")
                answer = conn.read_line()
                if answer is None:
                    return
                if answer == "*":  # RFC 9051 §6.2.2: the client cancels
                    conn.send(f"{tag} BAD authentication cancelled")
                    continue
                logged_in = _plain(answer) == (USER, PASSWORD)
                conn.send(f"{tag} {_imap_login(logged_in)}")
            elif command == "LOGOUT":
                conn.send("* BYE logging out", f"{tag} OK LOGOUT completed")
                return
            elif command == "NOOP":
                conn.send(f"{tag} OK NOOP completed")
            elif logged_in and command in ("LIST", "SELECT", "UID", "EXPUNGE"):
                self.mailbox(conn, tag, command, args)
            else:
                conn.send(f"{tag} BAD {command or 'empty'} not understood here")

    def mailbox(self, conn: Connection, tag: str, command: str, args: str) -> None:
        """What maildrill's IMAP probe asks: the INBOX, search by Subject, fetch, delete."""
        with self.lock:
            uids = sorted(self.inbox)
            if command == "LIST":
                conn.send('* LIST (\\HasNoChildren) "/" INBOX', f"{tag} OK LIST completed")
            elif command == "SELECT":
                conn.send(
                    f"* {len(uids)} EXISTS",
                    "* 0 RECENT",
                    "* FLAGS (\\Seen \\Deleted)",
                    f"* OK [UIDVALIDITY 1] UIDs valid; next {self.next_uid}",
                    f"{tag} OK [READ-WRITE] SELECT completed",
                )
            elif command == "EXPUNGE":
                for uid in sorted(self.deleted, reverse=True):
                    conn.send(f"* {uids.index(uid) + 1} EXPUNGE")
                    del self.inbox[uid]
                self.deleted.clear()
                conn.send(f"{tag} OK EXPUNGE completed")
            else:
                self.uid_command(conn, tag, args, uids)

    def uid_command(self, conn: Connection, tag: str, args: str, uids: list[int]) -> None:
        verb, _, rest = args.partition(" ")
        verb = verb.upper()
        if verb == "SEARCH":  # SUBJECT <token>, all the probe searches by
            token = rest.split()[-1].strip('"').encode()
            found = [str(uid) for uid in uids if token in self.inbox[uid]]
            conn.send(f"* SEARCH {' '.join(found)}".rstrip(), f"{tag} OK SEARCH completed")
            return
        uid = int(rest.split()[0])
        if uid not in self.inbox:
            conn.send(f"{tag} OK nothing to do")
        elif verb == "FETCH":  # BODY.PEEK[]
            raw = self.inbox[uid]
            head = f"* {uids.index(uid) + 1} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n"
            conn.sock.sendall(head.encode() + raw + b")\r\n")
            conn.send(f"{tag} OK FETCH completed")
        elif verb == "STORE":  # +FLAGS (\Deleted)
            self.deleted.add(uid)
            conn.send(
                f"* {uids.index(uid) + 1} FETCH (UID {uid} FLAGS (\\Deleted))",
                f"{tag} OK STORE completed",
            )
        else:
            conn.send(f"{tag} BAD UID {verb} not understood here")

    # -- POP3 (RFC 1939), CAPA (RFC 2449), STLS (RFC 2595) -----------------------------------

    def pop3(self, conn: Connection, *, greeting: str) -> None:
        conn.send(greeting)
        user = None
        while (line := conn.read_line()) is not None:
            command, _, arg = line.partition(" ")
            command = command.upper()
            plaintext_ok = conn.tls or self.flaws.pop3_user_before_tls
            if command == "CAPA":
                caps = ["TOP", "UIDL"] + ([] if conn.tls else ["STLS"])
                caps += ["USER"] if plaintext_ok else []
                conn.send("+OK capability list follows", *caps, ".")
            elif command == "STLS" and not conn.tls:
                conn.send("+OK begin TLS negotiation")
                conn.start_tls()
            elif command in ("USER", "PASS") and not plaintext_ok:
                conn.send("-ERR [AUTH] start TLS first")  # RFC 2595 §4, RFC 3206 §4
            elif command == "USER":
                user = arg
                conn.send("+OK send PASS")
            elif command == "PASS":
                ok = (user, arg) == (USER, PASSWORD)
                conn.send("+OK logged in" if ok else "-ERR [AUTH] invalid login")
            elif command == "QUIT":
                conn.send("+OK bye")
                return
            else:
                conn.send("-ERR not understood here")


def _multiline(code: int, lines: list[str]) -> list[str]:
    """An SMTP reply of several lines (RFC 5321 §4.2.1): ``250-`` on all but the last."""
    return [f"{code}-{line}" for line in lines[:-1]] + [f"{code} {lines[-1]}"]


def _path(arg: str) -> str:
    """The address of ``TO:<a@b>``, ``FROM:<a@b> SIZE=1`` or a VRFY/EXPN argument."""
    if match := re.search(r"<([^>]*)>", arg):
        return match[1]
    return arg.rpartition(":")[2].strip()


def _imap_strings(args: str) -> list[str]:
    """The atoms and quoted strings of IMAP command arguments (RFC 9051 §4.3)."""
    return [
        re.sub(r"\\(.)", r"\1", quoted) if quoted or not atom else atom
        for quoted, atom in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', args)
    ]


def _imap_login(ok: bool) -> str:
    return "OK logged in" if ok else "NO [AUTHENTICATIONFAILED] invalid credentials"


def _plain(answer: str) -> tuple[str, str]:
    """(user, password) of a SASL PLAIN response (RFC 4616)."""
    try:
        _, user, password = base64.b64decode(answer).decode().split("\0")
    except ValueError:
        return "", ""
    return user, password


def server_pki(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """(the CA file the targets trust, the servers' TLS context)."""
    ca, cert, key = make_pki(directory)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ca, ctx


@contextmanager
def mail_system(
    directory: Path, pki: tuple[Path, ssl.SSLContext], flaws: Flaws, roles: tuple[Role, ...]
) -> Iterator[tuple[Path, MailSystem]]:
    """A target file naming only ``roles``, and the scripted system behind them."""
    ca, ctx = pki
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    system = MailSystem(flaws)
    with ExitStack() as stack:
        stack.callback(system.crash)
        endpoints = ""
        for role in roles:
            port = system.serve(role, ctx).port
            endpoints += f'\n[endpoints.{role}]\nurl = "{role}://127.0.0.1:{port}"\n'
        path = directory / "target.toml"
        path.write_text(
            f'name = "hygiene"\ndomain = "{DOMAIN}"\nca_file = "{ca}"\n\n'
            '[accounts]\ncount = 1\npassword_file = "password"\n\n'
            f"[expect]\nmax_message_size = {LIMIT}\n{endpoints}",
            encoding="utf-8",
        )
        yield path, system
