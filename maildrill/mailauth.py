"""Mail authentication as a receiver applies it: DKIM (RFC 6376) and DMARC (RFC 7489).

The one home of these policies for the embedded target, the reference stack's DMARC milter
and the behavioural probes:

- DMARC records parsed by checkdmarc (:func:`parse_dmarc`), found the way RFC 7489 §6.6.3
  says (:func:`find_dmarc_policy`), and evaluated (:func:`dmarc_result`);
- identifier alignment (RFC 7489 §3.1) on the public-suffix list (:func:`aligned`);
- each DKIM signature of a message verified by dkimpy (:func:`dkim_results`), through the
  ``dnsfunc`` it verifies with, answered by a lookup of our choosing (:func:`dkim_dnsfunc`).

DNS comes in as a :data:`TxtLookup` (a name's TXT strings), so each caller keeps its own
resolver: the lab's cached one, Knot's, the target's.

Usage::

    txt = resolver_txt(resolver)
    policy = find_dmarc_policy(txt, "mail.example.co.uk")   # DMARCPolicy(policy="quarantine", …)
    aligned("bounce.example.co.uk", "mail.example.co.uk")     # True: one Organizational Domain
    dmarc_result(policy, "mail.example.co.uk", ("pass", "example.co.uk"), [])   # "pass"
    [r.result for r in dkim_results(raw, txt)]          # ["pass"]: one signature, verified
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import getaddresses
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Literal

import checkdmarc.dmarc
import checkdmarc.utils
import dkim
import dns.exception
import dns.resolver
from publicsuffixlist import PublicSuffixList

if TYPE_CHECKING:
    from maildrill.dnsrecords.lookups import Lookups

__all__ = [
    "DKIMDnsFunc",
    "DKIMResult",
    "DMARCPolicy",
    "TxtLookup",
    "aligned",
    "clear_checkdmarc_cache",
    "dkim_dnsfunc",
    "dkim_results",
    "dkim_signature_count",
    "dmarc_result",
    "find_dmarc_policy",
    "header_from_domain",
    "is_dmarc_record",
    "organizational_domain",
    "parse_dmarc",
    "resolver_txt",
]

log = logging.getLogger(__name__)

TxtLookup = Callable[[str], list[str]]
"""A name's TXT records, each one's strings joined; [] when there are none (or no answer)."""

DKIMDnsFunc = Callable[..., bytes | None]
"""dkimpy's ``dnsfunc(name: bytes, timeout=5)``: the TXT record's bytes, or None."""

Alignment = Literal["r", "s"]  # adkim= / aspf= (RFC 7489 §6.3): relaxed or strict

# tags a receiver does not need to apply a policy; checkdmarc looks their domains up in DNS
_REPORT_TAGS = ("rua", "ruf")


# -- DNS --------------------------------------------------------------------------------------


def resolver_txt(resolver: dns.resolver.Resolver, *, lifetime: float | None = None) -> TxtLookup:
    """A :data:`TxtLookup` on a dnspython resolver; any DNS error reads as "no record"."""

    def txt(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT", lifetime=lifetime)
        except dns.exception.DNSException:
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    return txt


def dkim_dnsfunc(txt: TxtLookup) -> DKIMDnsFunc:
    """dkimpy's ``dnsfunc`` contract on a :data:`TxtLookup`: the first TXT record at the
    key's name (``<selector>._domainkey.<domain>``), as bytes, or None."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        records = txt(name.decode("ascii", "replace").rstrip("."))
        return records[0].encode() if records else None

    return dnsfunc


# -- DKIM signatures --------------------------------------------------------------------------

# a DKIM-Signature field's name at the start of a header line (continuations start with WSP)
_SIGNATURE_FIELD = re.compile(rb"^dkim-signature[ \t]*:", re.IGNORECASE | re.MULTILINE)
_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class DKIMResult:
    """One DKIM-Signature verified (RFC 6376 §6), its result named as RFC 8601 §2.7.1 does."""

    result: str  # pass, fail, or permerror: dkimpy refused the signature or the message
    domain: str | None  # d=, once dkimpy has read the signature
    selector: str | None  # s=, likewise
    detail: str  # what dkimpy said, for evidence and logs


def dkim_signature_count(message: bytes) -> int:
    """How many DKIM-Signature fields the message's header carries."""
    head = _END_OF_HEADER.split(message, maxsplit=1)[0]
    return len(_SIGNATURE_FIELD.findall(head))


def dkim_results(message: bytes, txt: TxtLookup, *, minkey: int = 1024) -> Iterator[DKIMResult]:
    """Each DKIM-Signature of ``message`` verified by dkimpy in turn, the first first;
    nothing when it carries none. Keys come from ``txt``; one shorter than ``minkey`` bits
    is refused (permerror; dkimpy's default, RFC 8301 §3.2).

    Lazy, so a receiver stops at the first signature that settles its question (DMARC:
    one aligned pass). Example::

        first = next(dkim_results(raw, txt), None)    # None: the message is not signed
    """
    dnsfunc = dkim_dnsfunc(txt)
    for idx in range(dkim_signature_count(message)):
        verifier = None
        try:
            verifier = dkim.DKIM(message, minkey=minkey)
            ok = bool(verifier.verify(idx=idx, dnsfunc=dnsfunc))
        except dkim.DKIMException as exc:
            log.info("DKIM signature %d: permerror: %s", idx + 1, exc)
            result, detail = "permerror", f"dkimpy: {exc}"
        else:
            result = "pass" if ok else "fail"
            detail = "signature verifies" if ok else "signature does not verify"
        # dkimpy sets d= and s= together once it has read the signature's tags
        domain = _text(getattr(verifier, "domain", None))
        selector = _text(getattr(verifier, "selector", None)) if domain else None
        yield DKIMResult(result, domain, selector, detail)


def _text(value: object) -> str | None:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else None


# -- DMARC records ----------------------------------------------------------------------------


def is_dmarc_record(text: str) -> bool:
    """A TXT record that is a DMARC record (RFC 7489 §6.6.3: it starts ``v=DMARC1``)."""
    return text.replace(" ", "").startswith("v=DMARC1")


def parse_dmarc(
    record: str, domain: str, *, lookups: Lookups | None = None
) -> tuple[dict[str, Any], list[str]]:
    """checkdmarc's parse: (tags with their defaults, warnings).

    With ``lookups`` (an audit of the domain's record) checkdmarc also checks the report
    destinations through them, and a question they left unanswered raises
    :class:`~maildrill.dnsrecords.LookupFailed`. Without (a receiver applying the policy) the
    report URIs are set aside and no DNS is asked. Raises checkdmarc's ``DMARCError``
    subclasses on a record that does not parse.
    """
    if lookups is None:
        tags, warnings = _offline_parse(record, domain)
        return dict(tags), list(warnings)
    clear_checkdmarc_cache()
    parsed = checkdmarc.dmarc.parse_dmarc_record(record, domain, resolver=lookups, retries=0)
    lookups.check_answered()
    return dict(parsed["tags"]), list(parsed["warnings"])


@lru_cache(maxsize=256)
def _offline_parse(record: str, domain: str) -> tuple[dict[str, Any], list[str]]:
    # cached: a receiver parses the same few records for every message it takes
    kept = ";".join(t for t in record.split(";") if _tag(t) not in _REPORT_TAGS)
    parsed = checkdmarc.dmarc.parse_dmarc_record(kept, domain)
    return dict(parsed["tags"]), list(parsed["warnings"])


def _tag(part: str) -> str:
    return part.partition("=")[0].strip().lower()


def clear_checkdmarc_cache() -> None:
    """Forget checkdmarc's process-wide DNS answers: a check must see what the target's
    resolver says now (and record it), not what an earlier check or target was told."""
    checkdmarc.utils.DNS_CACHE.clear()


# -- alignment --------------------------------------------------------------------------------


@cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # loads the bundled list: ≈ 0.2 s, once


def organizational_domain(domain: str) -> str:
    """The Organizational Domain (RFC 7489 §3.2): the public suffix plus one label.

    ``mail.example.co.uk`` → ``example.co.uk``; a name that is itself a public suffix is
    its own. A TLD not on the list (``.test``) counts as a public suffix.
    """
    name = domain.lower().rstrip(".")
    return _public_suffixes().privatesuffix(name) or name


def aligned(identifier: str, from_domain: str, mode: Alignment = "r") -> bool:
    """Whether an authenticated identifier (SPF's MAIL FROM domain, DKIM's d=) aligns with
    the RFC5322.From domain (RFC 7489 §3.1): strict (``s``) when identical, relaxed (``r``)
    when both have the same Organizational Domain.

    Example: ``aligned("mail.example.co.uk", "example.co.uk")`` is True, with ``"s"`` False.
    """
    a, b = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not a or not b:
        return False
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


# -- the receiver's evaluation ----------------------------------------------------------------


@dataclass(frozen=True)
class DMARCPolicy:
    """The DMARC policy a receiver applies to mail from one RFC5322.From domain."""

    record: str
    domain: str  # where it is published: the From domain or its Organizational Domain
    policy: str  # p=, or sp= for a subdomain under its Organizational Domain's record
    adkim: Alignment
    aspf: Alignment


def find_dmarc_policy(txt: TxtLookup, from_domain: str) -> DMARCPolicy | None:
    """The policy for ``from_domain`` (RFC 7489 §6.6.3): the record at ``_dmarc.<domain>``,
    else the one at ``_dmarc.<Organizational Domain>``. None, so no DMARC processing, when
    neither has one, or there are several, or checkdmarc cannot parse it.
    """
    from_domain = from_domain.lower().rstrip(".")
    org = organizational_domain(from_domain)
    for domain in dict.fromkeys((from_domain, org)):
        records = [r for r in txt(f"_dmarc.{domain}") if is_dmarc_record(r)]
        if not records:
            continue
        if len(records) > 1:
            return None
        try:
            tags, _ = parse_dmarc(records[0], domain)
        except checkdmarc.dmarc.DMARCError as exc:
            log.info("DMARC record of %s ignored: %s", domain, exc)
            return None
        policy = tags["p" if domain == from_domain else "sp"]["value"]
        return DMARCPolicy(
            records[0],
            domain,
            str(policy),
            "s" if tags["adkim"]["value"] == "s" else "r",
            "s" if tags["aspf"]["value"] == "s" else "r",
        )
    return None


def header_from_domain(from_values: Iterable[str]) -> str | None:
    """The RFC5322.From domain DMARC is about, from every From header's value; None when
    there is not exactly one address (RFC 7489 §6.6.1: no single identity to check)."""
    addresses = getaddresses(list(from_values))
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        return None
    return addresses[0][1].rpartition("@")[2].lower().rstrip(".") or None


def dmarc_result(
    policy: DMARCPolicy,
    from_domain: str,
    spf: tuple[str, str],
    dkim: Iterable[tuple[str, str | None]],
) -> str:
    """``pass``, ``fail`` or ``temperror`` for one message (RFC 7489 §4.2).

    ``spf`` is (SPF result, the domain it checked: MAIL FROM's, or HELO's for the null
    sender); ``dkim`` one (result, d=) per signature. Pass when either passes for an
    identifier aligned with ``from_domain`` in the policy's mode. Temperror, no verdict and
    so no quarantine (§6.6.2), when neither passes and a check of an aligned identifier met
    a transient DNS error: an unaligned one could not have made the message pass, so its
    error changes nothing (the null sender's HELO name is rarely the From domain's).
    """
    spf_result, spf_domain = spf
    spf_aligned = aligned(spf_domain, from_domain, policy.aspf)
    if spf_result == "pass" and spf_aligned:
        return "pass"
    transient = spf_result == "temperror" and spf_aligned
    for result, domain in dkim:  # lazily: a caller may verify signatures one by one
        dkim_aligned = aligned(domain or "", from_domain, policy.adkim)
        if result == "pass" and dkim_aligned:
            return "pass"
        transient = transient or (result == "temperror" and dkim_aligned)
    return "temperror" if transient else "fail"
