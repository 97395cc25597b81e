"""S15 IP reputation: a client at a DNSBL-listed address is refused, an unlisted one is not."""

from __future__ import annotations

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.errors import TargetError
from maildrill.greetings import smtp_greeting_problem
from maildrill.probes.auth import dnsbl_listed
from maildrill.probes.smtp import foreign_sender, is_loopback_endpoint, transaction
from maildrill.smtp_protocol import EHLO_NAME, OK
from maildrill.target import Endpoint, Role, Target
from maildrill.wire import Wire

LISTED = "127.0.0.2"  # RFC 5782 §5: the test entry every DNSBL must list
UNLISTED = "127.0.0.3"


def _attempt(target: Target, endpoint: Endpoint, source: str, evidence: Evidence) -> str:
    """'refused: …' or 'accepted: …' for one session from ``source`` up to RCPT."""
    try:
        with Wire.open(target, endpoint, source=source) as wire:
            evidence.transcript(f"session from {source}", wire.transcript)
            problem = smtp_greeting_problem(wire.read_smtp())
            if problem is not None:
                return f"refused: {problem}"
            ehlo = wire.smtp(f"EHLO {EHLO_NAME}")
            if ehlo.code != OK:
                return f"refused: EHLO {ehlo.code} {ehlo.text}"
            tx = transaction(wire, foreign_sender(target), [target.account(0).address], None)
            wire.smtp("QUIT")
    except TargetError as exc:
        return f"refused: {exc}"
    if tx.refused_at is not None:
        return f"refused: {tx.refused_at} {tx.last.code} {tx.last.text}"
    return f"accepted: RCPT {tx.last.code} {tx.last.text}"


@control(
    "FILTER-DNSBL",
    "A client listed in the DNSBL (127.0.0.2) is refused; an unlisted one (127.0.0.3) is not",
    severity="high",
    reference="seed S15 (IP reputation, Spamhaus/XBL); RFC 5782 §5 (test entries)",
    roles=[Role.SMTP],
)
def test_dnsbl_listed_client_refused(
    target: Target, endpoint: Endpoint, evidence: Evidence
) -> None:
    zones = target.dns.dnsbl_zones
    if not zones:
        not_applicable("the target declares no DNSBL zone (dns.dnsbl_zones)")
    if not is_loopback_endpoint(target, endpoint):
        not_applicable(
            f"{endpoint} is not on loopback: the client cannot take the source address "
            f"{LISTED}, so a listed client cannot be simulated"
        )
    lookups = [
        f"{ip} in {zone}: {dnsbl_listed(target, ip, zone) or 'not listed'}"
        for ip in (LISTED, UNLISTED)
        for zone in zones
    ]
    evidence.dns("DNSBL lookups", lookups)
    expect(
        any(dnsbl_listed(target, LISTED, zone) for zone in zones),
        f"no declared DNSBL zone lists {LISTED}: {lookups} (RFC 5782 §5 requires it)",
    )
    listed = _attempt(target, endpoint, LISTED, evidence)
    unlisted = _attempt(target, endpoint, UNLISTED, evidence)
    evidence.table("outcome", [["client", "result"], [LISTED, listed], [UNLISTED, unlisted]])
    expect(listed.startswith("refused"), f"listed client {LISTED} was {listed}")
    expect(unlisted.startswith("accepted"), f"unlisted client {UNLISTED} was {unlisted}")
