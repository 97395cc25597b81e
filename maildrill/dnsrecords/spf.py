"""SPF records and the static walk of their terms (RFC 7208).

:func:`walk_spf` follows every ``include`` and ``redirect`` through the target's resolver and
counts what RFC 7208 §4.6.4 limits: DNS-querying terms (at most 10) and void lookups (at most
2), and notes ``ptr`` terms (§5.5: SHOULD NOT be used) and the effective ``all``.

Why not ``checkdmarc.spf.parse_spf_record``: it turns a DNS timeout inside an include into a
warning (so an unanswered query would look like a short record), it stops counting at the
void-lookup limit even with ``ignore_too_many_lookups``, and it keeps a process-wide answer
cache. The checks need both counts and a timeout reported as an error.

Usage::

    records = spf_records(lookups, "example.test")   # ['v=spf1 ip4:192.0.2.1 -all']
    walk = walk_spf(lookups, "example.test", records[0])
    walk.lookups, walk.void, walk.all_qualifier       # 0, 0, '-'
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from maildrill.dnsrecords.lookups import Lookups

__all__ = ["SPFWalk", "spf_records", "walk_spf"]

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4
MAX_VOID = 2  # RFC 7208 §4.6.4
MAX_MX_NAMES = 10  # RFC 7208 §4.6.4: an mx term may yield at most 10 exchanges

# RFC 7208 §4.6.1: term = [qualifier] mechanism [":" domain-spec / "/" cidr] / modifier
_TERM = re.compile(
    r"^(?P<q>[+\-~?]?)(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)(?P<sep>[:=/]?)(?P<rest>.*)$"
)
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})


def spf_records(lookups: Lookups, domain: str) -> list[str]:
    """The TXT records at ``domain`` that are SPF records (RFC 7208 §4.5: ``v=spf1`` exactly)."""
    return [
        t for t in lookups.txt(domain) if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")
    ]


@dataclass
class SPFWalk:
    """What the walk of one SPF record (and everything it includes) found."""

    domain: str
    record: str
    lookups: int = 0
    void: int = 0
    all_qualifier: str | None = None  # of the effective ``all``, following a redirect
    ptr_terms: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # permerrors met on the way
    trace: list[str] = field(default_factory=list)  # one line per DNS-querying term


def walk_spf(lookups: Lookups, domain: str, record: str) -> SPFWalk:
    """Walk ``record`` (published at ``domain``) and its includes; see the module docstring."""
    walk = SPFWalk(domain=domain, record=record)
    walk.all_qualifier = _visit(lookups, walk, domain, record, [domain.lower()])
    return walk


def _visit(
    lookups: Lookups, walk: SPFWalk, domain: str, record: str, chain: list[str]
) -> str | None:
    all_qualifier: str | None = None
    redirect: str | None = None
    for term in record.split()[1:]:
        m = _TERM.match(term)
        if m is None:
            walk.problems.append(f"{domain}: bad term {term!r} (RFC 7208 §4.6.1)")
            continue
        qualifier, name, sep, rest = m["q"] or "+", m["name"].lower(), m["sep"], m["rest"]
        if sep == "=":
            if name == "redirect":
                redirect = rest
            continue  # exp= and unknown modifiers do not query (§6.2, §6)
        if name not in _MECHANISMS:
            walk.problems.append(f"{domain}: unknown mechanism {term!r} (RFC 7208 §5)")
            continue
        target = (rest.split("/", 1)[0] if sep == ":" else "") or domain
        if name == "all":
            all_qualifier = qualifier
        elif name in ("ip4", "ip6"):
            _check_network(walk, domain, name, rest)
        elif name == "include":
            _count(walk, domain, term)
            if "%" in target:
                continue  # a macro depends on the message; nothing to ask now
            if target.lower() in chain:
                walk.problems.append(f"{domain}: include loop via {target} (RFC 7208 §5.2)")
                continue
            included = spf_records(lookups, target)
            if not included:
                walk.void += 1
                walk.problems.append(f"{domain}: {term} has no SPF record (RFC 7208 §5.2)")
                continue
            _visit(lookups, walk, target, included[0], [*chain, target.lower()])
        elif name == "a" or name == "exists":
            _count(walk, domain, term)
            if "%" not in target and not lookups.addresses(target):
                walk.void += 1
        elif name == "mx":
            _count(walk, domain, term)
            if "%" in target:
                continue
            exchanges = lookups.mx(target)
            if not exchanges:
                walk.void += 1
            if len(exchanges) > MAX_MX_NAMES:
                walk.problems.append(f"{domain}: {term} yields {len(exchanges)} MX (> 10)")
            for _pref, host in exchanges[:MAX_MX_NAMES]:
                if not lookups.addresses(host):
                    walk.void += 1
        elif name == "ptr":
            _count(walk, domain, term)
            walk.ptr_terms.append(f"{domain}: {term}")
    # RFC 7208 §6.1: redirect is used only when the record has no "all"
    if redirect is not None and all_qualifier is None:
        _count(walk, domain, f"redirect={redirect}")
        if redirect.lower() in chain:
            walk.problems.append(f"{domain}: redirect loop via {redirect} (RFC 7208 §6.1)")
            return None
        target_records = spf_records(lookups, redirect)
        if not target_records:
            walk.void += 1
            walk.problems.append(f"{domain}: redirect={redirect} has no SPF record (§6.1)")
            return None
        return _visit(lookups, walk, redirect, target_records[0], [*chain, redirect.lower()])
    return all_qualifier


def _count(walk: SPFWalk, domain: str, term: str) -> None:
    walk.lookups += 1
    walk.trace.append(f"{walk.lookups:2d}. {domain}: {term}")


def _check_network(walk: SPFWalk, domain: str, name: str, value: str) -> None:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        walk.problems.append(f"{domain}: {name}:{value} is not a network (RFC 7208 §5.6)")
        return
    if (name == "ip4") != (net.version == 4):
        walk.problems.append(f"{domain}: {name}:{value} has the wrong address family")
