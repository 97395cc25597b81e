"""DMARC records (RFC 7489) audited through the target's resolver: found, read as
published, their report destinations checked. checkdmarc's parse, which receivers share, is
:func:`maildrill.mailauth.parse_dmarc`.

checkdmarc 5.17 follows DMARCbis (RFC 9989): it drops ``pct`` from the parsed tags and warns
"Support for the pct tag was removed in RFC 9989". The seed (S13) still requires ``pct=100``,
so :func:`explicit_tags` keeps every tag as published and the checks report both facts.

Usage::

    records = dmarc_records(lookups, "example.test")
    tags, warnings = parse_dmarc(records[0], "example.test", lookups=lookups)
    explicit_tags(records[0])["pct"]       # '100'
    rua_problems(lookups, records[0], "example.test")   # [] when every rua is authorised
"""

from __future__ import annotations

import checkdmarc.dmarc

from maildrill.dnsrecords.dkim import parse_tags
from maildrill.dnsrecords.lookups import Lookups
from maildrill.mailauth import clear_checkdmarc_cache, is_dmarc_record

__all__ = ["dmarc_records", "explicit_tags", "rua_problems"]

DMARCBIS_PCT = (
    "pct was removed from DMARC by RFC 9989 (DMARCbis; checkdmarc warns so); it is checked "
    "here because the seed policy S13 requires pct=100 (RFC 7489 §6.3)"
)


def dmarc_records(lookups: Lookups, domain: str) -> list[str]:
    """The DMARC records at ``_dmarc.<domain>`` (RFC 7489 §6.6.3: TXT starting ``v=DMARC1``)."""
    return [t for t in lookups.txt(f"_dmarc.{domain}") if is_dmarc_record(t)]


def explicit_tags(record: str) -> dict[str, str]:
    """The tags exactly as published, lower-case names, pct included."""
    return parse_tags(record)


def rua_problems(lookups: Lookups, record: str, domain: str) -> list[str]:
    """Why the ``rua`` of ``record`` is not usable; empty when it is.

    Each URI must be a valid ``mailto:`` (RFC 7489 §6.4); a destination outside the domain's
    organisational domain must publish ``<domain>._report._dmarc.<dest>`` (RFC 7489 §7.1).
    """
    rua = explicit_tags(record).get("rua")
    if not rua:
        return ["no rua tag: aggregate reports go nowhere (RFC 7489 §6.3; seed S13)"]
    problems: list[str] = []
    for uri in rua.split(","):
        try:
            parsed = checkdmarc.dmarc.parse_dmarc_report_uri(uri)
        except checkdmarc.dmarc.DMARCError as exc:
            problems.append(str(exc))
            continue
        destination = str(parsed["address"]).rsplit("@", 1)[-1].lower()
        clear_checkdmarc_cache()
        try:
            checkdmarc.dmarc.verify_dmarc_report_destination(
                domain, destination, resolver=lookups, retries=0
            )
        except (
            checkdmarc.dmarc.UnverifiedDMARCURIDestination,  # a warning class, not a DMARCError
            checkdmarc.dmarc.DMARCError,
        ) as exc:
            lookups.check_answered()  # a timeout is "not known", not "not authorised"
            problems.append(" ".join(str(exc).split()))
    lookups.check_answered()
    return problems
