"""The greeting banners reveal no software version (information only)."""

from __future__ import annotations

import ipaddress
import re

from maildrill.controls.api import Evidence, control, expect
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

# a dotted version number such as 2.3, 3.7.11, IIS's 6.0.3790.4675 or Zimbra's
# 8.8.15_GA_4484 (not IMAP4rev1); an IPv4 address matches too and is dropped, but only a
# valid one (octets up to 255)
_VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+){1,3}(?:[-+~_][\w.]+)?(?![\w.])", re.IGNORECASE)


def versions_in(text: str) -> list[str]:
    return [m.group(0) for m in _VERSION.finditer(text) if not _is_ipv4(m.group(0))]


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


@control(
    "HYG-BANNER",
    "Greeting banners do not reveal the server software's version",
    severity="info",
    reference="RFC 5321 §7.9 (information disclosure); CIS mail-server benchmarks",
    roles=[Role.SMTP, Role.SUBMISSION, Role.SMTPS, Role.IMAP, Role.IMAPS, Role.POP3, Role.POP3S],
)
def test_banner_reveals_no_version(target: Target, endpoint: Endpoint, evidence: Evidence) -> None:
    with Wire.open(target, endpoint) as wire:
        evidence.transcript("greeting", wire.transcript)
        if endpoint.role in (Role.SMTP, Role.SUBMISSION, Role.SMTPS):
            banner = wire.read_smtp().text
            wire.smtp("QUIT")
        elif endpoint.role in (Role.IMAP, Role.IMAPS):
            banner = wire.read_line()
            wire.imap("LOGOUT")
        else:
            banner = wire.read_line()
            wire.pop3("QUIT")
    # IMAP greetings may carry a CAPABILITY code; capabilities are not versions
    banner = re.sub(r"\[CAPABILITY [^\]]*\]", "", banner, flags=re.IGNORECASE)
    found = versions_in(banner)
    expect(not found, f"banner {banner!r} reveals version {found}")
