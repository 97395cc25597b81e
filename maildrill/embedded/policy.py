"""The inbound filtering layers of seed S12, S13 and S15: DNSBL, SPF, DKIM, DMARC, GTUBE.

Every DNS question goes to the lab's own DNS server through one cached dnspython resolver,
so the policies are checked against the records the target file advertises.

Usage::

    policy = Policy(domain="example.test", resolver=("127.0.0.1", 5353),
                    dnsbl_zones=["dnsbl.example.test"], selector="mail", dkim_key=pem)
    policy.dnsbl("127.0.0.2")                 # "dnsbl.example.test" (listed)
    policy.spf("127.0.0.5", "a@example.test", "helo")[0]   # "fail"
    verdict = policy.inbound(raw, "127.0.0.1", "a@example.test", "helo", "mx1.example.test",
                             "pass")     # the SPF result of RCPT time
    verdict.quarantine, verdict.header
"""

from __future__ import annotations

import email.parser
from dataclasses import dataclass

import dkim
import dns.exception
import dns.resolver
import spf

from maildrill.dnsrecords.pyspf_adapter import pyspf_lookup
from maildrill.mailauth import (
    DKIMResult,
    dkim_results,
    dmarc_result,
    find_dmarc_policy,
    header_from_domain,
    resolver_txt,
)

__all__ = ["GTUBE", "Policy", "Verdict"]

# the Generic Test for Unsolicited Bulk Email (SpamAssassin's GTUBE string)
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

# headers signed on submission: the RFC 6376 §5.4.1 recommendations that a message has
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to"]


@dataclass(frozen=True)
class Verdict:
    """What the inbound filters decided about one message."""

    spf: str
    dkim: tuple[DKIMResult, ...]  # one per signature, the first first
    dmarc: str
    dmarc_policy: str | None
    header_from: str | None
    header: bytes  # the Authentication-Results: header line, CRLF-terminated

    @property
    def quarantine(self) -> bool:
        return self.dmarc == "fail" and self.dmarc_policy in ("quarantine", "reject")


class Policy:
    def __init__(
        self,
        *,
        domain: str,
        resolver: tuple[str, int],
        dnsbl_zones: list[str],
        selector: str,
        dkim_key: bytes,
    ) -> None:
        self.domain = domain
        self.dnsbl_zones = dnsbl_zones
        self.selector = selector
        self._dkim_key = dkim_key
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [resolver[0]]
        res.port = resolver[1]
        res.timeout = 2.0
        res.lifetime = 4.0
        # the lab's records never change while it runs; cache them for throughput
        res.cache = dns.resolver.Cache()
        self.resolver = res
        # pyspf looks names up through its module-level DNSLookup, which would use the
        # system resolver; point it at the lab DNS (this process is the lab server only)
        # names outside the lab are refused by the lab DNS: they do not exist here
        spf.DNSLookup = pyspf_lookup(res, absent=lambda name: not self._in_lab(name))
        self._txt = resolver_txt(res)

    # -- DNS helpers -------------------------------------------------------------------

    def _in_lab(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return name == self.domain or name.endswith("." + self.domain)

    # -- the layers ----------------------------------------------------------------------

    def dnsbl(self, ip: str) -> str | None:
        """The first DNSBL zone listing ``ip`` (IPv4), or None."""
        parts = ip.split(".")
        if len(parts) != 4:
            return None
        for zone in self.dnsbl_zones:
            try:
                self.resolver.resolve(".".join(reversed(parts)) + "." + zone, "A")
            except dns.exception.DNSException:
                continue
            return zone
        return None

    def spf(self, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
        """(result, explanation) per RFC 7208; the null sender is checked as postmaster@helo."""
        sender = mail_from or f"postmaster@{helo}"
        result, explanation = spf.check2(i=ip, s=sender, h=helo)
        return str(result), str(explanation)

    def inbound(
        self, message: bytes, ip: str, mail_from: str, helo: str, authserv: str, spf_result: str
    ) -> Verdict:
        """DKIM and DMARC for a received message, and the Authentication-Results header."""
        signatures = tuple(dkim_results(message, self._txt))
        header_from = header_from_domain(_HEADER_PARSER.parsebytes(message).get_all("From", []))
        mf_domain = (mail_from.rpartition("@")[2] or helo).lower()
        dmarc, policy = "none", None
        found = find_dmarc_policy(self._txt, header_from) if header_from else None
        if header_from and found is not None:
            policy = found.policy
            dkim_ids = [(s.result, s.domain) for s in signatures]
            dmarc = dmarc_result(found, header_from, (spf_result, mf_domain), dkim_ids)
        parts = [
            f"spf={spf_result} smtp.mailfrom={mail_from or '<>'}",
            *([_dkim_part(s) for s in signatures] or ["dkim=none"]),
            f"dmarc={dmarc}"
            + (f" (p={policy})" if policy else "")
            + (f" header.from={header_from}" if header_from else ""),
        ]
        header = f"Authentication-Results: {authserv};\r\n\t" + ";\r\n\t".join(parts) + "\r\n"
        return Verdict(spf_result, signatures, dmarc, policy, header_from, header.encode())

    def dkim_sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature (rsa-sha256, relaxed/relaxed) prepended."""
        signature = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self._dkim_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED_HEADERS,
        )
        return bytes(signature) + message


def _dkim_part(signature: DKIMResult) -> str:
    """One signature's result in Authentication-Results (RFC 8601 §2.7.1)."""
    domain = f" header.d={signature.domain}" if signature.domain else ""
    return f"dkim={signature.result}{domain}"


def is_gtube(message: bytes) -> bool:
    return GTUBE in message


_HEADER_PARSER = email.parser.BytesHeaderParser()
