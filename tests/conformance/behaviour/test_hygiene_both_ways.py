"""HYG-BANNER, HYG-SIZE and HYG-PLAINTEXT-LOGIN both ways: a small scripted mail system on
loopback passes each control, and the same system with exactly one weakness fails exactly
that control, on exactly the roles it weakens.

The system speaks just enough SMTP, IMAP and POP3 for these checks: STARTTLS/STLS on the
plaintext ports, the implicit-TLS ports, a SIZE limit, and an IMAP INBOX that shows what
SMTP accepted (HYG-SIZE looks for an over-size message it got through, to delete it). Each
case writes a target file naming only the endpoints its control needs and runs only that
control's check (``-k``): the rest of the behavioural suite needs a full mail system."""

from __future__ import annotations

import base64
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maildrill.target import IMPLICIT_TLS, Role
from tests.conformance.behaviour.suite import run_behaviour
from tests.conformance.scripted import Connection, Listener
from tests.conformance.tls.pki import make_pki

USER, PASSWORD = "user0001", "tiger-Lily-42"
LIMIT = 20_000  # the SIZE the sound server advertises and enforces, in bytes
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


@dataclass(frozen=True)
class Flaws:
    """What is wrong with the scripted system; the defaults make a sound one."""

    banners: Mapping[Role, str] = field(default_factory=dict)  # greetings that differ
    size_advertised: bool = True
    declared_size_refused: bool = True  # MAIL FROM:<…> SIZE=n over the limit: 552
    oversize_refused: bool = True  # a message over the limit: 552 at the end of data
    imap_login_before_tls: bool = False  # no LOGINDISABLED; LOGIN, AUTH=PLAIN in plaintext
    pop3_user_before_tls: bool = False  # CAPA USER; USER/PASS work before STLS


class MailSystem:
    """The scripted servers' protocols, sharing one INBOX (UID -> message)."""

    def __init__(self, flaws: Flaws) -> None:
        self.flaws = flaws
        self.inbox: dict[int, bytes] = {}
        self.deleted: set[int] = set()
        self.next_uid = 1
        self.lock = threading.Lock()

    def protocol(self, role: Role) -> Callable[[Connection], None]:
        kind = PROTOCOL[role]
        greeting = self.flaws.banners.get(role, GREETINGS[kind])
        speak = {"smtp": self.smtp, "imap": self.imap, "pop3": self.pop3}[kind]
        return lambda conn: speak(conn, greeting)

    # -- SMTP (RFC 5321), SIZE (RFC 1870) ----------------------------------------------------

    def smtp(self, conn: Connection, greeting: str) -> None:
        conn.send(greeting)
        while (line := conn.read_line()) is not None:
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                keywords = ["mx.example.test", "PIPELINING", "8BITMIME"]
                keywords += [] if conn.tls else ["STARTTLS"]
                keywords += [f"SIZE {LIMIT}"] if self.flaws.size_advertised else []
                conn.send(*(f"250-{k}" for k in keywords[:-1]), f"250 {keywords[-1]}")
            elif verb == "STARTTLS" and not conn.tls:
                conn.send("220 2.0.0 ready to start TLS")
                conn.start_tls()
            elif verb == "MAIL":
                declared = re.search(r"\sSIZE=(\d+)", line, re.IGNORECASE)
                if declared and int(declared[1]) > LIMIT and self.flaws.declared_size_refused:
                    conn.send("552 5.3.4 message size exceeds fixed maximum message size")
                else:
                    conn.send("250 2.1.0 ok")
            elif verb == "RCPT":
                conn.send("250 2.1.5 ok")
            elif verb == "DATA":
                conn.send("354 end data with <CR><LF>.<CR><LF>")
                data = conn.read_until(b"\r\n.\r\n")
                if data is None:
                    return
                if len(data) > LIMIT and self.flaws.oversize_refused:
                    conn.send("552 5.3.4 message size exceeds fixed maximum message size")
                else:
                    self.deliver(data.replace(b"\r\n..", b"\r\n.") + b"\r\n")
                    conn.send("250 2.0.0 queued")
            elif verb == "QUIT":
                conn.send("221 2.0.0 bye")
                return
            elif verb in ("NOOP", "RSET"):
                conn.send("250 2.0.0 ok")
            else:
                conn.send("502 5.5.1 not implemented")

    def deliver(self, message: bytes) -> None:
        with self.lock:
            self.inbox[self.next_uid] = message
            self.next_uid += 1

    # -- IMAP (RFC 9051) ---------------------------------------------------------------------

    def imap(self, conn: Connection, greeting: str) -> None:
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

    def pop3(self, conn: Connection, greeting: str) -> None:
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


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """(the CA file the targets trust, the servers' TLS context), for every case."""
    ca, cert, key = make_pki(tmp_path_factory.mktemp("pki"))
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
        endpoints = ""
        for role in roles:
            listener = Listener(system.protocol(role), ctx, implicit_tls=role in IMPLICIT_TLS)
            stack.callback(listener.close)
            endpoints += f'\n[endpoints.{role}]\nurl = "{role}://127.0.0.1:{listener.port}"\n'
        path = directory / "target.toml"
        path.write_text(
            f'name = "hygiene"\ndomain = "example.test"\nca_file = "{ca}"\n\n'
            '[accounts]\ncount = 1\npassword_file = "password"\n\n'
            f"[expect]\nmax_message_size = {LIMIT}\n{endpoints}",
            encoding="utf-8",
        )
        yield path, system


@dataclass(frozen=True)
class Case:
    control: str
    check: str  # the check's function name, to run only it
    roles: tuple[Role, ...]  # the control's: one verdict each
    flaws: Flaws
    fails: Mapping[Role, str]  # the roles that must fail, each with words of its reason
    also: tuple[Role, ...] = ()  # endpoints the check uses besides its own


BANNER_ROLES = tuple(PROTOCOL)  # every role that greets
VERSIONED = {
    Role.SMTP: "220 mx.example.test ESMTP Postfix 3.7.11",
    # IIS's SMTP service: a four-part version
    Role.SUBMISSION: "220 mx.example.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675",
    Role.IMAPS: "* OK Dovecot 2.3.19 ready.",
    Role.POP3: "+OK Dovecot 2.3.19 ready.",
    # Zimbra's build suffix, joined to the version by an underscore
    Role.IMAP: "* OK mail.example.test Zimbra IMAP4rev1 server ready 8.8.15_GA_4484",
}
# an address in a greeting is not a version
UNVERSIONED = {Role.SMTPS: "220 mx.example.test ESMTP ready (192.0.2.25)"}


def _banner(flaws: Flaws, fails: Mapping[Role, str]) -> Case:
    return Case("HYG-BANNER", "test_banner_reveals_no_version", BANNER_ROLES, flaws, fails)


def _size(flaws: Flaws, reason: str | None, *, mailbox: bool = True) -> Case:
    fails = {Role.SMTP: reason} if reason else {}
    # imaps: the mailbox HYG-SIZE looks in for an over-size message that got through
    check = "test_size_advertised_and_enforced"
    also = (Role.IMAPS,) if mailbox else ()
    return Case("HYG-SIZE", check, (Role.SMTP,), flaws, fails, also=also)


def _plaintext(flaws: Flaws, fails: Mapping[Role, str]) -> Case:
    roles = (Role.IMAP, Role.POP3)
    return Case("HYG-PLAINTEXT-LOGIN", "test_plaintext_login_refused", roles, flaws, fails)


CASES = {
    "banner-sound": _banner(Flaws(banners=UNVERSIONED), {}),
    "banner-versioned": _banner(
        Flaws(banners=VERSIONED),
        {
            Role.SMTP: "3.7.11",
            Role.SUBMISSION: "6.0.3790.4675",
            Role.IMAPS: "2.3.19",
            Role.POP3: "2.3.19",
            Role.IMAP: "8.8.15_GA_4484",
        },
    ),
    "size-sound": _size(Flaws(), None),
    "size-not-advertised": _size(Flaws(size_advertised=False), "does not advertise SIZE"),
    # RFC 1870 §6.1: a declared size over the limit must get 552
    "size-declared-accepted": _size(
        Flaws(declared_size_refused=False), f"SIZE={LIMIT + 1} answered 250"
    ),
    # RFC 1870 §6.3: the limit holds for a client that does not declare the size too
    "size-oversize-accepted": _size(Flaws(oversize_refused=False), f"(SIZE {LIMIT}) answered 250"),
    # without a mailbox to delete it from, the reason is still the accepted message
    "size-oversize-accepted-no-mailbox": _size(
        Flaws(oversize_refused=False), f"(SIZE {LIMIT}) answered 250", mailbox=False
    ),
    "plaintext-sound": _plaintext(Flaws(), {}),
    "plaintext-imap-login": _plaintext(
        Flaws(imap_login_before_tls=True), {Role.IMAP: "plaintext LOGIN succeeded"}
    ),
    "plaintext-pop3-user-pass": _plaintext(
        Flaws(pop3_user_before_tls=True), {Role.POP3: "USER/PASS login succeeded"}
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hygiene_control_both_ways(
    tmp_path: Path, pki: tuple[Path, ssl.SSLContext], name: str
) -> None:
    case = CASES[name]
    roles = case.roles + case.also
    with mail_system(tmp_path / name, pki, case.flaws, roles) as (target, system):
        run = run_behaviour(target, tmp_path, keyword=case.check)
    ids = {f"{case.control}[{role}]": role for role in case.roles}
    expected = {cid: "fail" if role in case.fails else "pass" for cid, role in ids.items()}
    verdicts = {cid: run.controls.get(cid, {}).get("verdict", "not run") for cid in ids}
    assert verdicts == expected, run.describe(set(ids)) + "\n" + run.output
    for cid, role in ids.items():
        if role in case.fails:
            assert case.fails[role] in run.controls[cid]["reason"], run.describe({cid})
    if Role.IMAPS in case.also or case.control != "HYG-SIZE":
        assert not system.inbox, "the check left what it sent in the mailbox"
    else:  # no mailbox endpoint to delete it from: the evidence says it stayed
        evidence = run.controls["HYG-SIZE[smtp]"]["evidence"]
        assert any(e["label"] == "clean-up" for e in evidence), evidence
