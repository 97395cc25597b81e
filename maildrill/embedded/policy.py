"""The inbound filtering layers of seed S12, S13 and S15: DNSBL, SPF, DKIM, DMARC, GTUBE.

Every DNS question goes to the lab's own DNS server through one cached dnspython resolver,
so the policies are checked against the records the target file advertises.

Usage::

    policy = Policy(domain="example.test", resolver=("127.0.0.1", 5353),
                    dnsbl_zones=["dnsbl.example.test"], selector="mail", dkim_key=pem)
    policy.dnsbl("127.0.0.2")                 # "dnsbl.example.test" (listed)
    policy.spf("127.0.0.5", "a@example.test", "helo")[0]   # "fail"
    verdict = policy.inbound(raw, "127.0.0.1", "a@example.test", "helo", "mx1.example.test")
    verdict.quarantine, verdict.header
"""

from __future__ import annotations

import email.parser
import email.utils
import logging
from dataclasses import dataclass

import dkim
import dns.exception
import dns.resolver
import spf

from maildrill.spfdns import pyspf_lookup

__all__ = ["GTUBE", "Policy", "Verdict"]

log = logging.getLogger(__name__)

# the Generic Test for Unsolicited Bulk Email (SpamAssassin's GTUBE string)
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

# headers signed on submission: the RFC 6376 §5.4.1 recommendations that a message has
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to"]


@dataclass(frozen=True)
class Verdict:
    """What the inbound filters decided about one message."""

    spf: str
    dkim: str
    dkim_domain: str | None
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

    # -- DNS helpers -------------------------------------------------------------------

    def _in_lab(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return name == self.domain or name.endswith("." + self.domain)

    def _txt(self, name: str) -> list[bytes]:
        try:
            answer = self.resolver.resolve(name, "TXT")
        except dns.exception.DNSException:
            return []
        return [b"".join(r.strings) for r in answer]

    def _dkim_dns(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's dnsfunc contract: the TXT record's bytes, or None."""
        records = self._txt(name.decode().rstrip("."))
        return records[0] if records else None

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

    def dkim_verify(self, message: bytes) -> tuple[str, str | None]:
        """(result, signing domain) of the first DKIM signature: pass, fail, none, permerror."""
        if b"dkim-signature:" not in message[: message.find(b"\r\n\r\n") + 2].lower():
            return "none", None
        try:
            d = dkim.DKIM(message, minkey=1024)
            ok = d.verify(dnsfunc=self._dkim_dns)
        except dkim.DKIMException as exc:
            log.info("DKIM permerror: %s", exc)
            return "permerror", None
        domain = d.domain.decode() if isinstance(d.domain, bytes) else None
        return ("pass" if ok else "fail"), domain

    def dmarc_record(self, domain: str) -> dict[str, str] | None:
        for record in self._txt(f"_dmarc.{domain}"):
            text = record.decode(errors="replace")
            if text.startswith("v=DMARC1"):
                tags = (t.strip().partition("=") for t in text.split(";") if "=" in t)
                return {k.strip().lower(): v.strip() for k, _, v in tags}
        return None

    def inbound(
        self, message: bytes, ip: str, mail_from: str, helo: str, authserv: str, spf_result: str
    ) -> Verdict:
        """DKIM and DMARC for a received message, and the Authentication-Results header."""
        dkim_result, dkim_domain = self.dkim_verify(message)
        header_from = _header_from_domain(message)
        mf_domain = (mail_from.rpartition("@")[2] or helo).lower()
        dmarc, policy = "none", None
        if header_from:
            record = self.dmarc_record(header_from)
            if record is not None:
                policy = record.get("p", "none")
                # relaxed alignment (RFC 7489 §3.1), with the organisational domain
                # simplified to "one is a subdomain of the other" — enough for the lab
                spf_ok = spf_result == "pass" and _aligned(mf_domain, header_from)
                dkim_ok = dkim_result == "pass" and _aligned(dkim_domain or "", header_from)
                if spf_ok or dkim_ok:
                    dmarc = "pass"
                elif spf_result == "temperror" or dkim_result == "temperror":
                    # RFC 7489 §6.6.2: a transient DNS failure is no verdict; do not quarantine
                    dmarc = "temperror"
                else:
                    dmarc = "fail"
        parts = [
            f"spf={spf_result} smtp.mailfrom={mail_from or '<>'}",
            f"dkim={dkim_result}" + (f" header.d={dkim_domain}" if dkim_domain else ""),
            f"dmarc={dmarc}"
            + (f" (p={policy})" if policy else "")
            + (f" header.from={header_from}" if header_from else ""),
        ]
        header = f"Authentication-Results: {authserv};\r\n\t" + ";\r\n\t".join(parts) + "\r\n"
        return Verdict(
            spf_result, dkim_result, dkim_domain, dmarc, policy, header_from, header.encode()
        )

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


def is_gtube(message: bytes) -> bool:
    return GTUBE in message


def _aligned(a: str, b: str) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return bool(a) and (a == b or a.endswith("." + b) or b.endswith("." + a))


_HEADER_PARSER = email.parser.BytesHeaderParser()


def _header_from_domain(message: bytes) -> str | None:
    headers = _HEADER_PARSER.parsebytes(message)
    values = headers.get_all("From") or []
    if len(values) != 1:
        return None  # RFC 7489 §6.6.1: no or several From headers: no DMARC identity
    _, address = email.utils.parseaddr(str(values[0]))
    domain = address.rpartition("@")[2].lower()
    return domain or None
