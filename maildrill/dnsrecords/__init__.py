"""The DNS machinery of the ``conformance/dns`` checks: typed lookups and record parsers.

Every query goes through the target's resolver
(:func:`maildrill.dnsrecords.resolver.resolver_for`) and is recorded, so a check can put the
exact questions and answers into its evidence::

    from maildrill.dnsrecords import Lookups

    dns = Lookups(target)
    for pref, host in dns.mx(target.domain):
        ...
    evidence.dns("queries", dns.lines)

A question the resolver does not answer (one retry after a timeout, then give up) raises
:class:`LookupFailed`: the control could not be judged, so its verdict is ``error``.
"""

from maildrill.dnsrecords.lookups import LookupFailed, Lookups

__all__ = ["LookupFailed", "Lookups"]
