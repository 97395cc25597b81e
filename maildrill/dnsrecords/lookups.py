"""Recorded lookups through the target's resolver.

:class:`Lookups` answers typed questions (``mx``, ``txt``, ``addresses`` …) and keeps one
evidence line per question. It also offers dnspython's ``resolve()`` so that checkdmarc's
functions, given ``resolver=lookups``, ask the same resolver and are recorded too.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdatatype
import dns.resolver

from maildrill.dnsrecords.resolver import resolver_for
from maildrill.errors import MaildrillError
from maildrill.target import Target

__all__ = ["LookupFailed", "Lookups"]


class LookupFailed(MaildrillError):
    """The resolver gave no usable answer (timeout after one retry, SERVFAIL, REFUSED).

    Deliberately not a :class:`~maildrill.errors.TargetError`: the plugin maps it to verdict
    ``error`` (the control could not be judged), not ``fail`` (the record is wrong).
    """


class Lookups:
    """Questions to the target's resolver, each one recorded in :attr:`lines`.

    Example::

        dns = Lookups(target)
        dns.txt("_dmarc.example.test")   # ['v=DMARC1; p=quarantine; …']
        dns.lines                        # ['_dmarc.example.test TXT → "v=DMARC1; …"']
    """

    def __init__(self, target: Target) -> None:
        self._resolver = resolver_for(target)
        self.where = target.dns.resolver or "the system resolver"
        self.lines: list[str] = [f"; resolver: {self.where}"]
        self.unanswered: list[str] = []

    # -- dnspython-compatible entry point, used by checkdmarc ----------------------------------

    @property
    def lifetime(self) -> float:
        return float(self._resolver.lifetime)

    def resolve(self, qname: Any, rdtype: Any = "A", *args: Any, **kwargs: Any) -> Any:
        """dnspython's ``Resolver.resolve``, recorded; checkdmarc calls this one."""
        name = str(qname).rstrip(".")
        kind = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
        try:
            answer = self._resolver.resolve(qname, rdtype, lifetime=self._resolver.lifetime)
        except dns.resolver.NXDOMAIN:
            self.lines.append(f"{name} {kind} → NXDOMAIN")
            raise
        except dns.resolver.NoAnswer:
            self.lines.append(f"{name} {kind} → no records (NODATA)")
            raise
        except dns.resolver.LifetimeTimeout:
            self._unanswered(name, kind, "no answer after one retry (timeout)")
            raise
        except dns.resolver.NoNameservers as exc:
            self._unanswered(name, kind, f"no usable answer: {_short(exc)}")
            raise
        except dns.exception.DNSException as exc:
            self._unanswered(name, kind, f"failed: {_short(exc)}")
            raise
        self.lines.append(f"{name} {kind} → " + " | ".join(r.to_text() for r in answer))
        return answer

    def _unanswered(self, name: str, kind: str, what: str) -> None:
        line = f"{name} {kind} → {what} (asked {self.where})"
        self.lines.append(line)
        self.unanswered.append(line)

    def check_answered(self) -> None:
        """Raise :class:`LookupFailed` if any question so far went unanswered.

        Call it after handing ``self`` to a library that swallows DNS errors (checkdmarc
        turns a timeout in a nested SPF include into a warning).
        """
        if self.unanswered:
            raise LookupFailed("DNS: " + self.unanswered[0])

    # -- typed questions -------------------------------------------------------------------

    def records(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """The records of one RRset; empty for NXDOMAIN or NODATA (that is an answer)."""
        try:
            answer = self.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException:
            raise LookupFailed("DNS: " + self.unanswered[-1]) from None
        return list(answer)

    def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, its strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [
            b"".join(r.strings).decode("utf-8", "replace")
            for r in self.records(name, "TXT")
            if hasattr(r, "strings")
        ]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) of every MX, sorted by preference; exchange without dot."""
        found = [
            (int(r.preference), r.exchange.to_text().rstrip("."))  # type: ignore[attr-defined]
            for r in self.records(name, "MX")
        ]
        return sorted(found)

    def addresses(self, name: str) -> list[str]:
        """Every A and AAAA address of ``name`` (CNAMEs followed by the resolver)."""
        return [r.to_text() for kind in ("A", "AAAA") for r in self.records(name, kind)]

    def cname(self, name: str) -> str | None:
        """The CNAME target of ``name``, or None when ``name`` is not an alias."""
        found = self.records(name, "CNAME")
        return found[0].target.to_text().rstrip(".") if found else None  # type: ignore[attr-defined]

    def message(self, name: str, rdtype: str) -> dns.message.Message:
        """The whole response to a DNSSEC-OK query (for the AD bit and RRSIGs)."""
        resolver = self._resolver
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        host = resolver.nameservers[0]
        port = int(resolver.port)
        kind = rdtype.upper()
        for _attempt in range(2):  # one retry after a timeout, as dnsrecords/resolver.py promises
            try:
                response = dns.query.udp_with_fallback(
                    query, str(host), timeout=float(resolver.timeout), port=port
                )[0]
            except dns.exception.Timeout:
                continue
            except (OSError, dns.exception.DNSException) as exc:
                self._unanswered(name, kind, f"failed: {_short(exc)}")
                raise LookupFailed("DNS: " + self.unanswered[-1]) from None
            flags = dns.flags.to_text(response.flags)
            shown = " | ".join(rr.to_text() for rr in response.answer) or "no records"
            self.lines.append(f"{name} {kind} +dnssec → [{flags}] {shown}")
            return response
        self._unanswered(name, kind, "no answer after one retry (timeout)")
        raise LookupFailed("DNS: " + self.unanswered[-1])


def is_address_literal(name: str) -> bool:
    """``127.0.0.1`` or ``[::1]``: an address where a host name belongs (RFC 5321 §5.1)."""
    try:
        ipaddress.ip_address(name.strip("[]").rstrip("."))
    except ValueError:
        return False
    return True


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
