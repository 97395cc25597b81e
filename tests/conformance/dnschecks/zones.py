"""DNS zones for the DNS checks' both-ways proofs: one good domain and variants of it,
each with exactly one weakness, all served by one authoritative server on loopback.

Every variant is its own domain under ``test.`` (``spf-softfail.test`` …), so answers
cached by one run can never leak into another, and one server serves them all. The
server is the embedded target's (:mod:`maildrill.embedded.dns_server`).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from maildrill.dnsrecords.dnssec import signature_data
from maildrill.embedded.dns_server import DNSServer

ORIGIN = "test"
REPORTS = "reports"  # an outside organisational domain receiving DMARC reports
CA = f"pki.{ORIGIN}"  # the CA the target files say issues the domains' certificates
OTHER_CA = "letsencrypt.org"


def dkim_public(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def txt(value: str) -> str:
    """A TXT value, split into strings once the label is substituted (see Records.lines)."""
    return f"\x01{value}\x02"


def _strings(value: str) -> str:
    # RFC 1035 §3.3.14: one TXT string holds at most 255 octets
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


@dataclass
class Records:
    """The records of one domain, by part (``§`` stands for its label); a variant replaces
    one part."""

    mx: list[str]
    hosts: list[str]
    spf: list[str]
    dkim: list[str]
    dmarc: list[str]
    caa: list[str]
    extra: list[str]

    def lines(self, label: str) -> list[str]:
        parts = self.mx + self.hosts + self.spf + self.dkim + self.dmarc + self.caa + self.extra
        return [
            re.sub("\x01(.*?)\x02", lambda m: _strings(m[1]), line.replace("§", label))
            for line in parts
        ]


def good(keys: dict[int, str]) -> Records:
    """The seed's DNS (S11 to S13, S15) for the domain ``§.test``, and CAA naming the
    domain's CA (RFC 8659), which the domain's hosts inherit."""
    return Records(
        mx=["§ MX 10 mx1.§", "§ MX 20 mx2.§"],
        hosts=["mx1.§ A 127.0.0.1", "mx2.§ A 127.0.0.1", "§ A 127.0.0.1"],
        spf=[f"§ TXT {txt('v=spf1 ip4:127.0.0.1 -all')}"],
        dkim=[f"mail._domainkey.§ TXT {txt('v=DKIM1; k=rsa; p=' + keys[2048])}"],
        dmarc=[
            f"_dmarc.§ TXT {txt('v=DMARC1; p=quarantine; pct=100; rua=mailto:postmaster@§.test')}"
        ],
        caa=[f'§ CAA 0 issue "{CA}"'],
        extra=[],
    )


def _spf(record: str) -> Callable[[Records, dict[int, str]], None]:
    def change(r: Records, _keys: dict[int, str]) -> None:
        r.spf = [f"§ TXT {txt(record)}"]

    return change


def _dmarc(record: str, *extra: str) -> Callable[[Records, dict[int, str]], None]:
    def change(r: Records, _keys: dict[int, str]) -> None:
        r.dmarc = [f"_dmarc.§ TXT {txt(record)}"]
        r.extra += list(extra)

    return change


def _extra(*lines: str) -> Callable[[Records, dict[int, str]], None]:
    def change(r: Records, _keys: dict[int, str]) -> None:
        r.extra += list(lines)

    return change


def _eleven_includes(r: Records, _keys: dict[int, str]) -> None:
    # RFC 7208 §4.6.4: the 11th DNS-querying term is one too many
    r.spf = [
        f"§ TXT {txt('v=spf1 ' + ' '.join(f'include:i{n}.§.test' for n in range(11)) + ' -all')}"
    ]
    r.extra += [f"i{n}.§ TXT {txt(f'v=spf1 ip4:127.0.1.{n} -all')}" for n in range(11)]


def _ten_includes(r: Records, _keys: dict[int, str]) -> None:
    r.spf = [
        f"§ TXT {txt('v=spf1 ' + ' '.join(f'include:i{n}.§.test' for n in range(10)) + ' -all')}"
    ]
    r.extra += [f"i{n}.§ TXT {txt(f'v=spf1 ip4:127.0.1.{n} -all')}" for n in range(10)]


def _dkim(value: str) -> Callable[[Records, dict[int, str]], None]:
    def change(r: Records, keys: dict[int, str]) -> None:
        r.dkim = [f"mail._domainkey.§ TXT {txt(value.format(k1024=keys[1024], k2048=keys[2048]))}"]

    return change


def _set(part: str, lines: list[str]) -> Callable[[Records, dict[int, str]], None]:
    def change(r: Records, _keys: dict[int, str]) -> None:
        setattr(r, part, list(lines))

    return change


# variant → (the one control it must fail, how it differs from the good domain)
WEAK: dict[str, tuple[str, Callable[[Records, dict[int, str]], None]]] = {
    # S11, RFC 5321 §5.1, RFC 2181 §10.3
    "mx-missing": ("DNS-MX-PRESENT", _set("mx", [])),
    "mx-null": ("DNS-MX-PRESENT", _set("mx", ["§ MX 0 ."])),  # RFC 7505
    "mx-priority": ("DNS-MX-PRIORITY", _set("mx", ["§ MX 10 mx1.§", "§ MX 30 mx2.§"])),
    "mx-unresolvable": ("DNS-MX-RESOLVES", _set("hosts", ["mx1.§ A 127.0.0.1"])),
    "mx-cname": (
        "DNS-MX-TARGET",
        _set("hosts", ["mx1.§ A 127.0.0.1", "mx2.§ CNAME host2.§", "host2.§ A 127.0.0.1"]),
    ),
    "mx-literal": ("DNS-MX-TARGET", _set("mx", ["§ MX 10 mx1.§", "§ MX 20 127.0.0.1."])),
    # S12, RFC 7208
    "spf-missing": ("SPF-SINGLE", _set("spf", [])),
    "spf-two": (
        "SPF-SINGLE",
        _set(
            "spf",
            [
                f"§ TXT {txt('v=spf1 ip4:127.0.0.1 -all')}",
                f"§ TXT {txt('v=spf1 ip4:127.0.0.2 -all')}",
            ],
        ),
    ),
    "spf-softfail": ("SPF-ALL", _spf("v=spf1 ip4:127.0.0.1 ~all")),
    "spf-no-all": ("SPF-ALL", _spf("v=spf1 ip4:127.0.0.1")),
    "spf-redirect-softfail": (
        "SPF-ALL",
        lambda r, k: (
            _spf("v=spf1 ip4:127.0.0.1 redirect=_spf.§.test")(r, k),
            r.extra.append(f"_spf.§ TXT {txt('v=spf1 ip4:127.0.0.2 ~all')}"),
        ),
    ),
    "spf-11-lookups": ("SPF-LOOKUPS", _eleven_includes),
    "spf-void": (
        "SPF-VOID",
        _spf("v=spf1 a:nx1.§.test a:nx2.§.test a:nx3.§.test ip4:127.0.0.1 -all"),
    ),
    "spf-ptr": ("SPF-PTR", _spf("v=spf1 ip4:127.0.0.1 ptr -all")),
    # S15, RFC 6376 §3.6.1
    "dkim-missing": ("DKIM-SELECTOR", _set("dkim", [])),
    "dkim-revoked": ("DKIM-SELECTOR", _dkim("v=DKIM1; k=rsa; p=")),
    "dkim-1024": ("DKIM-KEY-SIZE", _dkim("v=DKIM1; k=rsa; p={k1024}")),
    "dkim-testing": ("DKIM-TESTMODE", _dkim("v=DKIM1; k=rsa; t=y; p={k2048}")),
    # S13, RFC 7489
    "dmarc-missing": ("DMARC-PRESENT", _set("dmarc", [])),
    "dmarc-none": (
        "DMARC-POLICY",
        _dmarc("v=DMARC1; p=none; pct=100; rua=mailto:postmaster@§.test"),
    ),
    "dmarc-pct50": (
        "DMARC-PCT",
        _dmarc("v=DMARC1; p=quarantine; pct=50; rua=mailto:postmaster@§.test"),
    ),
    "dmarc-no-rua": ("DMARC-RUA", _dmarc("v=DMARC1; p=quarantine; pct=100")),
    "dmarc-rua-not-mailto": (
        "DMARC-RUA",
        _dmarc("v=DMARC1; p=quarantine; pct=100; rua=https://reports.test/dmarc"),
    ),
    "dmarc-rua-unauthorised": (
        "DMARC-RUA",
        _dmarc(f"v=DMARC1; p=quarantine; pct=100; rua=mailto:agg@{REPORTS}.test"),
    ),
    # not in the seed policy, but broken where published (RFC 8461, RFC 8460, RFC 4035)
    "mta-sts-invalid": ("MTA-STS", _extra(f"_mta-sts.§ TXT {txt('v=STSv1; id=not valid!')}")),
    "mta-sts-no-policy": ("MTA-STS", _extra(f"_mta-sts.§ TXT {txt('v=STSv1; id=20240101')}")),
    "tlsrpt-invalid": ("TLSRPT", _extra(f"_smtp._tls.§ TXT {txt('v=TLSRPTv1; rua=ftp://x')}")),
    "dnssec-unsigned-key": ("DNSSEC", lambda r, k: r.extra.append(f"§ DNSKEY {k[0]}")),
    "dnssec-expired": ("DNSSEC", lambda r, k: None),  # signed in build(), already expired
    # RFC 8659: CAA that forbids the domain's CA (target files name it: expect.caa_issuers)
    "caa-other-ca": ("DNS-CAA", _set("caa", [f'§ CAA 0 issue "{OTHER_CA}"'])),
    # §3: the closest set wins, so the host's own set overrides the domain's good one
    "caa-host-other-ca": ("DNS-CAA", _extra(f'mx1.§ CAA 0 issue "{OTHER_CA}"')),
    "caa-no-ca": ("DNS-CAA", _set("caa", ['§ CAA 0 issue ";"'])),
    "caa-critical-unknown": ("DNS-CAA", _extra('§ CAA 128 tbs "unknown"')),
}

# variants that must pass everything: they prove a check does not over-reach
GOOD_TOO: dict[str, Callable[[Records, dict[int, str]], None]] = {
    "good": lambda r, k: None,
    "spf-10-lookups": _ten_includes,
    "spf-redirect": lambda r, k: (
        _spf("v=spf1 redirect=_spf.§.test")(r, k),
        r.extra.append(f"_spf.§ TXT {txt('v=spf1 ip4:127.0.0.1 -all')}"),
    ),
    "dnssec-signed": lambda r, k: None,  # signed in build()
    "tlsrpt": _extra(f"_smtp._tls.§ TXT {txt('v=TLSRPTv1; rua=mailto:tlsrpt@§.test')}"),
    "dmarc-reject-no-pct": _dmarc("v=DMARC1; p=reject; rua=mailto:postmaster@§.test"),
    "caa-missing": _set("caa", []),  # passes with a warning (test_dns_caa.py)
    "caa-several": _set(
        "caa",
        [
            f'§ CAA 0 issue "{OTHER_CA}"',
            f'§ CAA 0 issue "{CA.upper()}; validationmethods=dns-01"',
            '§ CAA 0 iodef "mailto:security@§.test"',
            '§ CAA 0 issuewild ";"',
        ],
    ),
    "dmarc-rua-authorised": _dmarc(
        f"v=DMARC1; p=quarantine; pct=100; rua=mailto:agg@{REPORTS}.test",
        f'§.test._report._dmarc.{REPORTS} TXT "v=DMARC1"',
    ),
}


Change = Callable[[Records, dict[int, str]], None]


def build(keys: dict[int, str], only: dict[str, Change] | None = None) -> dns.zone.Zone:
    """The zone of every variant (or of ``only`` those given, each changed from good)."""
    signing = ec.generate_private_key(ec.SECP256R1())
    point = signing.public_key().public_numbers()
    raw = point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")  # RFC 6605 §4
    dnskey = dns.rdata.from_text("IN", "DNSKEY", f"257 3 13 {base64.b64encode(raw).decode()}")
    keys = {**keys, 0: dnskey.to_text()}
    lines = [
        f"$ORIGIN {ORIGIN}.",
        "$TTL 300",
        "@ SOA ns1 hostmaster 1 3600 600 86400 300",
        "@ NS ns1",
        "ns1 A 127.0.0.1",
        f"{REPORTS} MX 10 mx.{REPORTS}",
        f"mx.{REPORTS} A 127.0.0.1",
    ]
    variants = only or {**{k: c for k, (_id, c) in WEAK.items()}, **GOOD_TOO}
    for label, change in variants.items():
        records = good(keys)
        change(records, keys)
        lines += records.lines(label)
    zone = dns.zone.from_text("\n".join(lines) + "\n", origin=ORIGIN, relativize=False)
    now = time.time()
    if only is None:
        _sign(zone, "dnssec-signed", signing, dnskey, now - 3600, now + 86400)
        _sign(zone, "dnssec-expired", signing, dnskey, now - 7 * 86400, now - 86400)
    return zone


def _sign(
    zone: dns.zone.Zone,
    label: str,
    key: ec.EllipticCurvePrivateKey,
    dnskey: dns.rdata.Rdata,
    inception: float,
    expiration: float,
) -> None:
    """Make ``<label>.test`` look like a signed zone apex: SOA and DNSKEY with RRSIGs."""
    name = dns.name.from_text(f"{label}.{ORIGIN}")
    soa = dns.rdata.from_text(
        "IN", "SOA", f"ns1.{ORIGIN}. hostmaster.{ORIGIN}. 1 3600 600 86400 300"
    )
    node = zone.find_node(name, create=True)
    for rdata in (soa, dnskey):
        rrset = dns.rrset.from_rdata_list(name, 300, [rdata])
        node.replace_rdataset(rrset.to_rdataset())
        signature = _rrsig(rrset, key, dnskey, name, int(inception), int(expiration))
        sigs = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdata.rdtype, create=True)
        sigs.add(signature, 300)


def serve(zone: dns.zone.Zone) -> DNSServer:
    """The embedded target's DNS server on ``zone``, chasing in-zone CNAMEs.

    The embedded server answers an A question at an alias with NODATA; an authoritative
    server (Knot, BIND) answers with the CNAME and the target's records (RFC 1034 §4.3.2),
    which the MX-to-CNAME variant needs so that it fails DNS-MX-TARGET alone.
    """
    server = DNSServer(zone)
    answerer = server._answerer  # private, but the only seam; see the docstring
    plain = answerer.answer

    def answer(wire: bytes, max_size: int | None) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
            question = query.question[0]
        except Exception:
            return plain(wire, max_size)
        node = zone.get_node(question.name)
        alias = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME) if node else None
        if alias is None or question.rdtype == dns.rdatatype.CNAME:
            return _with_signatures(query, plain(wire, max_size), node)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.answer.append(dns.rrset.from_rdata_list(question.name, alias.ttl, list(alias)))
        final = next(iter(alias)).target
        found = zone.get_node(final)
        rds = found.get_rdataset(dns.rdataclass.IN, question.rdtype) if found else None
        if rds is not None:
            response.answer.append(dns.rrset.from_rdata_list(final, rds.ttl, list(rds)))
        return response.to_wire()

    answerer.answer = answer  # type: ignore[method-assign]
    return server


def _rrsig(
    rrset: dns.rrset.RRset,
    key: ec.EllipticCurvePrivateKey,
    dnskey: dns.rdata.Rdata,
    signer: dns.name.Name,
    inception: int,
    expiration: int,
) -> dns.rdata.Rdata:
    # dnspython's dns.dnssec.sign needs cryptography >= 50; sign by hand (RFC 4034 §3.1.8.1)
    tag = _key_tag(dnskey.to_digestable())
    fields = (
        f"{dns.rdatatype.to_text(rrset.rdtype)} 13 {len(rrset.name) - 1} 300 "
        f"{expiration} {inception} {tag} {signer}"
    )
    unsigned = dns.rdata.from_text("IN", "RRSIG", f"{fields} AA==")
    der = key.sign(signature_data(rrset, unsigned), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return dns.rdata.from_text("IN", "RRSIG", f"{fields} {base64.b64encode(raw).decode()}")


def _key_tag(wire: bytes) -> int:
    total = sum(b << 8 if i % 2 == 0 else b for i, b in enumerate(wire))
    return (total + ((total >> 16) & 0xFFFF)) & 0xFFFF


def _with_signatures(
    query: dns.message.Message, reply: bytes | None, node: dns.node.Node | None
) -> bytes | None:
    # RFC 4035 §3.1.1: with the DO bit set, an answer carries the RRSIGs covering it
    if reply is None or node is None or not query.ednsflags & dns.flags.DO:
        return reply
    response = dns.message.from_wire(reply)
    rdtype = query.question[0].rdtype
    sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype)
    if sigs is None or not response.answer:
        return reply
    response.answer.append(dns.rrset.from_rdata_list(query.question[0].name, sigs.ttl, list(sigs)))
    return response.to_wire()


def target_file(
    directory: Path,
    label: str,
    resolver: str,
    *,
    timeout: float = 2.0,
    policy: str = "seed",
    smtp_url: str | None = None,
    ca_file: Path | None = None,
    caa_issuers: tuple[str, ...] = (CA,),
) -> Path:
    path = directory / f"{label}.toml"
    issuers = ", ".join(f'"{i}"' for i in caa_issuers)
    path.write_text(
        f'name = "{label}"\n'
        f'domain = "{label}.{ORIGIN}"\n'
        f'policy = "{policy}"\n'
        + (f'ca_file = "{ca_file}"\n' if ca_file else "")
        + "[endpoints.smtp]\n"
        f'url = "{smtp_url or f"smtp://mx1.{label}.{ORIGIN}:1"}"\n'
        "[dns]\n"
        f'resolver = "{resolver}"\n'
        f"timeout = {timeout}\n"
        'dkim_selectors = ["mail"]\n'
        "[expect]\n"
        f"caa_issuers = [{issuers}]\n",
        encoding="utf-8",
    )
    return path


class Blackhole:
    """A UDP 'resolver' that reads every question and never answers; counts datagrams."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.questions: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data, _addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                q = dns.message.from_wire(data).question[0]
                self.questions.append(f"{q.name} {dns.rdatatype.to_text(q.rdtype)}")
            except Exception:
                self.questions.append("?")

    def close(self) -> None:
        self.sock.close()
