"""SPF, DKIM, DMARC and DNSBL questions asked through the target's own resolver.

The behavioural checks need to know what the target's DNS says before they send: which
client address the domain's SPF does not authorise, what DMARC policy it publishes, whether
the DNSBL lists 127.0.0.2, and whether a DKIM signature verifies against the published key.

Usage::

    spf_result(target, "127.0.0.5", "probe@example.test")   # ("fail", "v=spf1 ip4:… -all")
    dmarc_policy(target, "example.test")                     # "quarantine"
    check = verify_dkim(target, raw)                         # DKIMCheck(ok=True, bits=2048…)
    auth_results(found.header("Authentication-Results"), "dkim")   # ["pass"]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dns.exception
import spf

from maildrill.dnsrecords.dkim import dkim_key
from maildrill.dnsrecords.pyspf_adapter import pyspf_lookup
from maildrill.dnsrecords.resolver import resolver_for
from maildrill.mailauth import dkim_results, find_dmarc_policy, resolver_txt
from maildrill.smtp_protocol import EHLO_NAME
from maildrill.target import Target

__all__ = [
    "DKIMCheck",
    "auth_results",
    "dmarc_policy",
    "dnsbl_listed",
    "spf_record",
    "spf_result",
    "txt",
    "verify_dkim",
]


def txt(target: Target, name: str) -> list[str]:
    """The TXT records of ``name`` (strings joined), [] if none or on a DNS error."""
    return resolver_txt(resolver_for(target))(name)


def spf_record(target: Target, domain: str) -> str | None:
    found = [t for t in txt(target, domain) if t.lower().startswith("v=spf1")]
    return found[0] if found else None


@contextmanager
def _pyspf_via(target: Target) -> Iterator[None]:
    """pyspf looks names up through a module-level function; route it to the target's
    resolver for the duration of one evaluation."""
    lookup = pyspf_lookup(resolver_for(target))
    saved = spf.DNSLookup
    spf.DNSLookup = lookup
    try:
        yield
    finally:
        spf.DNSLookup = saved


def spf_result(target: Target, ip: str, sender: str, helo: str = EHLO_NAME) -> str:
    """RFC 7208 result (pass, fail, softfail, neutral, none, …) of ``sender`` from ``ip``."""
    with _pyspf_via(target):
        result, _ = spf.check2(i=ip, s=sender, h=helo)
    return str(result)


def dmarc_policy(target: Target, domain: str) -> tuple[str | None, str | None]:
    """(the policy a receiver applies to mail From ``domain``, its record) — (None, None)
    when a receiver finds none to apply (RFC 7489 §6.6.3)."""
    found = find_dmarc_policy(lambda name: txt(target, name), domain)
    return (found.policy, found.record) if found is not None else (None, None)


def dnsbl_listed(target: Target, ip: str, zone: str) -> list[str]:
    """The A records ``zone`` returns for ``ip`` (RFC 5782 §2.1); [] means not listed."""
    name = ".".join(reversed(ip.split("."))) + "." + zone
    try:
        answer = resolver_for(target).resolve(name, "A")
    except dns.exception.DNSException:
        return []
    return [r.to_text() for r in answer]


_METHOD_RESULT = re.compile(r"(?:^|[;\s])([a-z0-9-]+)=([a-z]+)", re.IGNORECASE)


def auth_results(values: list[str], method: str) -> list[str]:
    """The results reported for ``method`` (dkim, spf, dmarc) in Authentication-Results
    header values (RFC 8601 §2.2), lower-cased, in order."""
    out = []
    for value in values:
        _, _, rest = value.partition(";")  # skip the authserv-id
        for name, result in _METHOD_RESULT.findall(rest):
            if name.lower() == method:
                out.append(result.lower())
    return out


@dataclass(frozen=True)
class DKIMCheck:
    """What verifying a message's first DKIM signature found."""

    signed: bool
    ok: bool
    domain: str | None
    selector: str | None
    bits: int | None
    detail: str


def verify_dkim(target: Target, message: bytes) -> DKIMCheck:
    """Verify the first DKIM-Signature with dkimpy against the key the target's DNS serves."""
    # minkey=512: this check reports the size itself instead of refusing a short key
    first = next(dkim_results(message, lambda name: txt(target, name), minkey=512), None)
    if first is None:
        return DKIMCheck(False, False, None, None, None, "no DKIM-Signature header")
    bits = None
    if first.domain and first.selector:
        name = f"{first.selector}._domainkey.{first.domain}"
        sizes = (dkim_key(name, record).bits for record in txt(target, name))
        bits = next((b for b in sizes if b is not None), None)
    return DKIMCheck(True, first.result == "pass", first.domain, first.selector, bits, first.detail)
