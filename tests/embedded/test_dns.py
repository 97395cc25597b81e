"""The lab's authoritative DNS answers (seed S11, S12, S13, S15), asked with dnspython."""

from __future__ import annotations

import base64

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from maildrill.dnsrecords.resolver import resolver_for
from maildrill.target import Target

from .conftest import DOMAIN


def _txt(target: Target, name: str) -> list[str]:
    return [b"".join(r.strings).decode() for r in resolver_for(target).resolve(name, "TXT")]


def _ask(target: Target, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    address = target.dns.resolver_address
    assert address is not None
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, address[0], port=address[1], timeout=3)


def test_mx_priorities(target: Target) -> None:
    # S11: MX 10 primary, MX 20 backup
    answer = resolver_for(target).resolve(DOMAIN, "MX")
    found = sorted((r.preference, r.exchange.to_text()) for r in answer)
    assert found == [(10, f"mx1.{DOMAIN}."), (20, f"mx2.{DOMAIN}.")]


@pytest.mark.parametrize("name", ["mx1", "mx2", "smtp", "imap", "pop3", "webmail"])
def test_service_names_resolve_to_loopback(target: Target, name: str) -> None:
    answer = resolver_for(target).resolve(f"{name}.{DOMAIN}", "A")
    assert [r.address for r in answer] == ["127.0.0.1"]


def test_spf_strict(target: Target) -> None:
    # S12: one SPF record, ending -all; only 127.0.0.1 authorised
    spf = [t for t in _txt(target, DOMAIN) if t.startswith("v=spf1")]
    assert spf == ["v=spf1 ip4:127.0.0.1 -all"]


def test_dkim_key_is_2048_bits(target: Target) -> None:
    # S15: DKIM keys of 2048-bit RSA
    (record,) = _txt(target, f"{target.dns.dkim_selectors[0]}._domainkey.{DOMAIN}")
    tags = dict(t.strip().split("=", 1) for t in record.split(";") if "=" in t)
    assert tags["v"] == "DKIM1" and tags["k"] == "rsa"
    key = load_der_public_key(base64.b64decode(tags["p"]))
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_dmarc_quarantine(target: Target) -> None:
    # S13: p=quarantine; pct=100; rua=mailto:postmaster@domain
    assert _txt(target, f"_dmarc.{DOMAIN}") == [
        f"v=DMARC1; p=quarantine; pct=100; rua=mailto:postmaster@{DOMAIN}"
    ]


def test_dnsbl_lists_only_127_0_0_2(target: Target) -> None:
    # RFC 5782 §5: 127.0.0.2 is the test entry a DNSBL must list
    zone = target.dns.dnsbl_zones[0]
    res = resolver_for(target)
    assert [r.address for r in res.resolve(f"2.0.0.127.{zone}", "A")] == ["127.0.0.2"]
    assert _txt(target, f"2.0.0.127.{zone}")
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve(f"3.0.0.127.{zone}", "A")


def test_answers_are_authoritative_with_correct_negatives(target: Target) -> None:
    ok = _ask(target, f"mx1.{DOMAIN}", "A")
    assert ok.flags & dns.flags.AA and ok.rcode() == dns.rcode.NOERROR
    nx = _ask(target, f"nosuchhost.{DOMAIN}", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.flags & dns.flags.AA
    assert nx.authority, "NXDOMAIN must carry the SOA (RFC 2308 §3)"
    nodata = _ask(target, f"mx1.{DOMAIN}", "MX")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority
    # an empty non-terminal exists: NODATA, not NXDOMAIN (RFC 8020)
    ent = _ask(target, f"0.0.127.{target.dns.dnsbl_zones[0]}", "A")
    assert ent.rcode() == dns.rcode.NOERROR
    foreign = _ask(target, "example.com", "A")
    assert foreign.rcode() == dns.rcode.REFUSED


def test_tcp_answers(target: Target) -> None:
    reply = _ask(target, DOMAIN, "MX", tcp=True)
    assert len(reply.answer[0]) == 2
