"""Name resolution through the target's own resolver.

Every lookup maildrill makes goes through :func:`resolver_for`, so a loopback lab (a DNS
server on 127.0.0.1:5353) and a real deployment (the system resolver) behave the same way.

Usage::

    for address in addresses(target, "mx1.example.test"):
        ...
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import dns.exception
import dns.resolver

from maildrill.errors import TargetTimeout, TargetUnreachable
from maildrill.target import Endpoint, Target

__all__ = ["addresses", "endpoint_addresses", "resolver_for"]


def resolver_for(target: Target) -> dns.resolver.Resolver:
    """A dnspython resolver that asks the target's resolver (or the system's)."""
    return _resolver(target.dns.resolver, target.dns.timeout)


@lru_cache(maxsize=16)
def _resolver(resolver: str | None, timeout: float) -> dns.resolver.Resolver:
    if resolver is None:
        res = dns.resolver.Resolver()
    else:
        res = dns.resolver.Resolver(configure=False)
        host, _, port = resolver.rpartition(":")
        res.nameservers = [host.strip("[]")]
        res.port = int(port)
    res.timeout = timeout
    # one retry after a timeout, then an error result (issue: DNS timeouts retried once)
    res.lifetime = timeout * 2
    res.cache = dns.resolver.Cache()
    return res


def addresses(target: Target, host: str) -> list[str]:
    """Every A and AAAA address of ``host`` (an IP literal is returned as is)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    res = resolver_for(target)
    found: list[str] = []
    where = target.dns.resolver or "the system resolver"
    for rdtype in ("A", "AAAA"):
        try:
            answer = res.resolve(host, rdtype)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            continue
        except dns.resolver.LifetimeTimeout:
            raise TargetTimeout(f"DNS: {where} did not answer for {host} {rdtype}") from None
        except dns.resolver.NoNameservers as exc:
            raise TargetUnreachable(f"DNS: {where} failed for {host} {rdtype}: {exc}") from None
        except dns.exception.DNSException as exc:
            raise TargetUnreachable(f"DNS: lookup of {host} via {where} failed: {exc}") from None
        found.extend(r.to_text() for r in answer)
    if not found:
        raise TargetUnreachable(f"DNS: {host} has no A or AAAA record (asked {where})")
    return found


def endpoint_addresses(target: Target, endpoint: Endpoint) -> list[tuple[str, int]]:
    """(address, port) of every node behind an endpoint (seed S4: DNS round robin)."""
    return [(a, endpoint.port) for a in addresses(target, endpoint.host)]
