"""Runs the whole lab in one process: PKI, DNS (its own threads), and every mail service on
one asyncio loop; writes the target file last, atomically, as the "ready" signal.

Usage::

    config = LabConfig(directory=Path("/tmp/lab"), accounts=20, domain="example.test")
    asyncio.run(serve(config))          # until SIGINT/SIGTERM
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

from maildrill.embedded.dns_server import DNSServer, build_zone, dnsbl_zone
from maildrill.embedded.imap import start_imap
from maildrill.embedded.maildir import ACCOUNT_PATTERN, Store
from maildrill.embedded.policy import Policy
from maildrill.embedded.pop3 import start_pop3
from maildrill.embedded.smtp import MAX_MESSAGE_SIZE, start_smtp
from maildrill.target import parse_target
from maildrill.tls.testpki import caa_issuer, make_dkim_key, make_pki, service_names

__all__ = ["DKIM_SELECTOR", "LabConfig", "serve"]

log = logging.getLogger(__name__)

DKIM_SELECTOR = "mail"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class LabConfig:
    directory: Path
    accounts: int = 20
    domain: str = "example.test"
    target_file: Path | None = None
    parent_pid: int | None = None  # stop when this process is gone (orphaned lab)
    # False: plain IMAP and POP3 offer no STARTTLS and take logins in plain text, as some
    # internal servers do (a weak lab, for the watchers' tests)
    mailbox_starttls: bool = True

    @property
    def target_path(self) -> Path:
        return self.target_file or self.directory / "target.toml"


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def _q(value: object) -> str:
    # JSON string and number syntax is valid TOML for the values written here
    return json.dumps(value if not isinstance(value, Path) else str(value))


def target_toml(config: LabConfig, ports: dict[str, int], dns_port: int, ca: Path) -> str:
    d = config.domain
    hosts = {
        "smtp": ("smtp", f"mx1.{d}", False),
        "submission": ("smtp", f"smtp.{d}", True),
        "smtps": ("smtps", f"smtp.{d}", False),
        "imap": ("imap", f"imap.{d}", config.mailbox_starttls),
        "imaps": ("imaps", f"imap.{d}", False),
        "pop3": ("pop3", f"pop3.{d}", config.mailbox_starttls),
        "pop3s": ("pop3s", f"pop3.{d}", False),
    }
    lines = [
        "# written by 'maildrill serve'; valid while that process runs",
        'name = "embedded"',
        f"domain = {_q(d)}",
        f"ca_file = {_q(ca.resolve())}",
        "",
    ]
    for role, (scheme, host, starttls) in hosts.items():
        lines.append(f"[endpoints.{role}]")
        lines.append(f"url = {_q(f'{scheme}://{host}:{ports[role]}')}")
        if starttls:
            lines.append("starttls_required = true")
        lines.append("")
    lines += [
        "[dns]",
        f"resolver = {_q(f'{HOST}:{dns_port}')}",
        f"dkim_selectors = [{_q(DKIM_SELECTOR)}]",
        f"dnsbl_zones = [{_q(dnsbl_zone(d))}]",
        "",
        "[accounts]",
        f"pattern = {_q(ACCOUNT_PATTERN)}",
        "first = 1",
        f"count = {config.accounts}",
        f"password_file = {_q((config.directory / 'passwords').resolve())}",
        "",
        "[expect]",
        'spam_action = "reject"',
        f"max_message_size = {MAX_MESSAGE_SIZE}",
        "mx_priorities = [10, 20]",
        "lockout_after = 3  # S17, per source address; 127.0.0.1 is exempt (fail2ban ignoreip)",
        'lockout_source = "127.0.0.9"',
        f"caa_issuers = [{_q(caa_issuer(d))}]  # the lab CA's name in the zone's CAA",
        "",
    ]
    return "\n".join(lines)


async def serve(config: LabConfig) -> None:
    """Run the lab until SIGINT or SIGTERM; the target file appears when all listen."""
    directory = config.directory
    directory.mkdir(parents=True, exist_ok=True)
    target = config.target_path
    target.unlink(missing_ok=True)  # its appearance means "ready"; never leave a stale one

    password = secrets.token_urlsafe(18)
    _write_secret(directory / "passwords", (password + "\n").encode())

    d = config.domain
    pki = make_pki(directory, service_names(d), ca_name="maildrill embedded lab CA")
    tls = pki.server_context()
    dkim = make_dkim_key(directory / "dkim.key", 2048)  # S15: 2048 bits

    dns_server = DNSServer(
        build_zone(d, dkim_selector=DKIM_SELECTOR, dkim_public_b64=dkim.public_b64), HOST
    )
    dns_server.start()
    store = Store(directory / "mail", d, count=config.accounts, password=password)
    policy = Policy(
        domain=d,
        resolver=(HOST, dns_server.port),
        dnsbl_zones=[dnsbl_zone(d)],
        selector=DKIM_SELECTOR,
        dkim_key=dkim.pem,
    )
    servers: dict[str, asyncio.Server] = {
        "smtp": await start_smtp("smtp", tls, store, policy, host=HOST, hostname=f"mx1.{d}"),
        "submission": await start_smtp(
            "submission", tls, store, policy, host=HOST, hostname=f"smtp.{d}"
        ),
        "smtps": await start_smtp("smtps", tls, store, policy, host=HOST, hostname=f"smtp.{d}"),
        "imap": await start_imap(
            store,
            tls,
            implicit_tls=False,
            hostname=f"imap.{d}",
            host=HOST,
            offer_starttls=config.mailbox_starttls,
        ),
        "imaps": await start_imap(store, tls, implicit_tls=True, hostname=f"imap.{d}", host=HOST),
        "pop3": await start_pop3(
            store,
            tls,
            implicit_tls=False,
            hostname=f"pop3.{d}",
            host=HOST,
            offer_stls=config.mailbox_starttls,
        ),
        "pop3s": await start_pop3(store, tls, implicit_tls=True, hostname=f"pop3.{d}", host=HOST),
    }
    ports = {role: int(s.sockets[0].getsockname()[1]) for role, s in servers.items()}

    text = target_toml(config, ports, dns_server.port, pki.ca_file)
    parse_target(__import__("tomllib").loads(text), source=target)  # never publish a bad file
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    log.info("listening: %s; DNS on %s", ports, dns_server.port)
    print(f"maildrill serve: ready, target file {target}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if config.parent_pid is not None:
        watchdog = asyncio.create_task(_watch_parent(config.parent_pid, stop))
    try:
        await stop.wait()
    finally:
        target.unlink(missing_ok=True)  # no longer valid once the lab stops
        if config.parent_pid is not None:
            watchdog.cancel()
        for s in servers.values():
            s.close()
        dns_server.stop()


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # a test run killed with SIGKILL cannot terminate its lab; the orphan is re-parented,
    # which getppid() shows, and stops itself instead of holding ports and files forever
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    log.warning("parent process %d is gone; stopping", parent_pid)
    stop.set()
