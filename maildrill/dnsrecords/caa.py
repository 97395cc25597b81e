"""CAA records (RFC 8659): which record set governs a name, and which CAs it lets issue.

A CA asked to certify a name looks for CAA at that name and, finding none, at each parent
up to (not including) the root; the first non-empty set is the *relevant* one (RFC 8659 §3).
No relevant set at all means any CA may issue.

Usage::

    sets = relevant_sets(dns, ["example.com", "mx1.example.com"])  # dns: a Lookups
    found = sets["mx1.example.com"]          # None, or the set found climbing
    found.owner                              # "example.com"
    found.refusal("letsencrypt.org")         # None if it may issue, else why not
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from maildrill.dnsrecords.lookups import Lookups

__all__ = ["Property", "RelevantSet", "relevant_sets"]

ISSUE = "issue"
CRITICAL = 0x80  # RFC 8659 §4.1: the Issuer Critical Flag
# property tags a CA may know: RFC 8659 §4.2-4.4, RFC 9495 (issuemail), the CA/Browser
# Forum's contactemail/contactphone and issuevmc; an unknown tag flagged critical forbids
# issuance (§4.1)
KNOWN_TAGS = frozenset(
    {"issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone"}
)


@dataclass(frozen=True)
class Property:
    """One CAA record: flags, property tag and value (RFC 8659 §4.1)."""

    flags: int
    tag: str
    value: str

    @property
    def issuer(self) -> str:
        """The issuer-domain-name of an issue value, lower case; "" = no CA (§4.2)."""
        return self.value.split(";", 1)[0].strip().lower()

    @property
    def critical_unknown(self) -> bool:
        return bool(self.flags & CRITICAL) and self.tag.lower() not in KNOWN_TAGS

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


@dataclass(frozen=True)
class RelevantSet:
    """The CAA set governing a name, and where it was found."""

    owner: str
    properties: tuple[Property, ...]

    @property
    def issuers(self) -> frozenset[str] | None:
        """The CAs its ``issue`` properties name; None when it has none: then it does not
        restrict issuance (§4.2), an ``iodef``-only set included."""
        named = [p.issuer for p in self.properties if p.tag.lower() == ISSUE]
        return frozenset(i for i in named if i) if named else None

    def refusal(self, issuer: str | None = None) -> str | None:
        """Why this set forbids the CA ``issuer`` (every CA, when None) a certificate for a
        host name; None when it does not.

        Example: ``RelevantSet("example.com", (Property(0, "issue", "pki.test"),)).refusal(
        "letsencrypt.org")`` → ``"CAA at example.com lets only pki.test issue, …"``
        """
        critical = [p.tag for p in self.properties if p.critical_unknown]
        if critical:
            return (
                f"CAA at {self.owner} holds the critical property {critical[0]!r}, unknown to "
                "CAs: no CA may issue (RFC 8659 §4.1)"
            )
        allowed = self.issuers
        if allowed is None:
            return None
        if not allowed:
            return f'CAA at {self.owner} lets no CA issue (issue ";", RFC 8659 §4.2)'
        if issuer is not None and issuer.lower() not in allowed:
            return (
                f"CAA at {self.owner} lets only {', '.join(sorted(allowed))} issue, "
                f"not {issuer} (RFC 8659 §4.2)"
            )
        return None


def relevant_sets(dns: Lookups, names: Iterable[str]) -> dict[str, RelevantSet | None]:
    """The relevant CAA set of each name (RFC 8659 §3), None where no name from it up to
    the top-level domain publishes CAA. Each owner is asked once, however many names share
    it; a lookup that gets no answer raises :class:`~maildrill.dnsrecords.LookupFailed`
    (§3: a CA must not issue then either, but the control cannot judge)."""
    asked: dict[str, tuple[Property, ...]] = {}

    def at(owner: str) -> tuple[Property, ...]:
        if owner not in asked:
            asked[owner] = tuple(
                Property(
                    int(r.flags),  # type: ignore[attr-defined]
                    r.tag.decode("ascii", "replace"),  # type: ignore[attr-defined]
                    r.value.decode("utf-8", "replace"),  # type: ignore[attr-defined]
                )
                for r in dns.records(owner, "CAA")
            )
        return asked[owner]

    found: dict[str, RelevantSet | None] = {}
    for name in names:
        labels = name.rstrip(".").lower().split(".")
        owners = (".".join(labels[i:]) for i in range(len(labels)))
        found[name] = next((RelevantSet(o, at(o)) for o in owners if at(o)), None)
    return found
