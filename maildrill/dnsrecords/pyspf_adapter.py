"""pyspf's DNS hook, answered by a dnspython resolver of our choosing.

pyspf resolves names through its module-level ``spf.DNSLookup``, which asks the system
resolver. The embedded target, the reference stack's SPF and DMARC daemons and the
behavioural probes all need it to ask a lab resolver instead; this is the one adapter.

Usage::

    spf.DNSLookup = pyspf_lookup(resolver)
    spf.check2(i="127.0.0.5", s="a@example.test", h="mx.example.test")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dns.exception
import dns.resolver
import spf

__all__ = ["PyspfLookup", "pyspf_lookup"]

PyspfLookup = Callable[..., list[tuple[tuple[str, str], Any]]]


def pyspf_lookup(
    resolver: dns.resolver.Resolver,
    *,
    max_lifetime: float | None = None,
    absent: Callable[[str], bool] = lambda name: False,
) -> PyspfLookup:
    """A function honouring pyspf's ``DNSLookup`` contract: ``[((name, type), data), …]``,
    empty for a name or type that does not exist, ``spf.TempError`` when DNS fails.

    ``max_lifetime`` caps pyspf's own (generous) timeout; ``absent(name)`` says a name the
    resolver refuses (SERVFAIL/REFUSED) is to be taken as non-existent rather than a
    temporary error — a lab DNS that refuses names outside its zone.
    """

    def lookup(
        name: str, qtype: str, strict: bool = True, timeout: float = 20
    ) -> list[tuple[tuple[str, str], Any]]:
        lifetime = min(timeout, max_lifetime) if max_lifetime is not None else None
        try:
            answer = resolver.resolve(name, qtype, raise_on_no_answer=False, lifetime=lifetime)
        except dns.resolver.NXDOMAIN:
            return []
        except dns.resolver.NoNameservers as exc:
            if absent(name):
                return []
            raise spf.TempError(f"DNS {exc}") from None
        except dns.exception.DNSException as exc:
            raise spf.TempError(f"DNS {exc}") from None
        return [((name, qtype), _data(qtype, rdata)) for rdata in answer]

    return lookup


def _data(qtype: str, rdata: Any) -> Any:
    if qtype in ("A", "AAAA"):
        return rdata.address
    if qtype == "MX":
        return (rdata.preference, rdata.exchange)
    if qtype == "PTR":
        return rdata.target.to_text(True)
    return rdata.strings  # TXT, SPF
