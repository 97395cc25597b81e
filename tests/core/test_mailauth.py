"""maildrill.mailauth: DMARC parsing, policy discovery, alignment on the public-suffix list,
the DMARC result, verifying each DKIM signature through the dkimpy DNS adapter — and the
stack's milter applying them.

The alignment cases are the ones the two replaced copies got wrong: the milter took the last
two labels as the Organizational Domain (so every ``*.co.uk`` aligned with every other), the
embedded target accepted only a domain and its subdomains (so siblings never aligned).
"""

from __future__ import annotations

import base64
from typing import Any

import checkdmarc.dmarc
import dkim
import dns.resolver
import pytest
import spf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maildrill.mailauth import (
    DMARCPolicy,
    aligned,
    dkim_dnsfunc,
    dkim_results,
    dkim_signature_count,
    dmarc_result,
    find_dmarc_policy,
    header_from_domain,
    organizational_domain,
    parse_dmarc,
)
from maildrill.stack import dmarc_milter


def zone(records: dict[str, list[str]]) -> Any:
    """A TxtLookup over fixed records, remembering what it was asked."""
    asked: list[str] = []

    def txt(name: str) -> list[str]:
        asked.append(name)
        return records.get(name, [])

    txt.asked = asked  # type: ignore[attr-defined]
    return txt


# -- Organizational Domain and alignment (RFC 7489 §3.1, §3.2) -------------------------------


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("mail.example.co.uk", "example.co.uk"),  # two-label public suffix
        ("example.co.uk", "example.co.uk"),
        ("a.b.example.com", "example.com"),
        ("MX1.Example.Test.", "example.test"),  # .test is not on the list: a suffix of its own
        ("co.uk", "co.uk"),  # a public suffix is its own
    ],
)
def test_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


@pytest.mark.parametrize(
    ("identifier", "from_domain", "relaxed", "strict"),
    [
        # the milter's "last two labels" said co.uk == co.uk: aligned; they are two owners
        ("a.example.co.uk", "b.co.uk", False, False),
        ("example.co.uk", "other.co.uk", False, False),
        # "last two labels" gave co.uk vs example.co.uk for these: not aligned; they are one
        ("mail.example.co.uk", "example.co.uk", True, False),
        # the embedded target's "one is a subdomain of the other" missed siblings
        ("bounce.example.test", "news.example.test", True, False),
        ("example.test", "example.test", True, True),
        ("Example.Test.", "example.test", True, True),
        ("example.test", "example.org", False, False),
        ("", "example.test", False, False),
    ],
)
def test_alignment(identifier: str, from_domain: str, relaxed: bool, strict: bool) -> None:
    assert aligned(identifier, from_domain) is relaxed
    assert aligned(identifier, from_domain, "r") is relaxed
    assert aligned(identifier, from_domain, "s") is strict


# -- parsing -----------------------------------------------------------------------------------


def test_parse_sets_defaults_and_lowercases() -> None:
    tags, warnings = parse_dmarc("v=DMARC1; p=Quarantine; adkim=s; pct=100", "example.test")
    assert tags["p"]["value"] == "quarantine"
    assert tags["sp"]["value"] == "quarantine"  # sp defaults to p (RFC 7489 §6.3)
    assert (tags["adkim"]["value"], tags["aspf"]["value"]) == ("s", "r")
    assert any("pct" in w for w in warnings)  # checkdmarc follows RFC 9989


def test_parse_without_lookups_asks_no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:
        raise AssertionError("a receiver's parse asked DNS")

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", no_dns)
    record = "v=DMARC1; p=reject; rua=mailto:agg@reports.example.org; ruf=mailto:f@x.example"
    tags, _ = parse_dmarc(record, "example.test")
    assert tags["p"]["value"] == "reject"


def test_parse_refuses_a_broken_record() -> None:
    with pytest.raises(checkdmarc.dmarc.DMARCError):
        parse_dmarc("v=DMARC1; p=sometimes", "example.test")


# -- finding the policy (RFC 7489 §6.6.3) -------------------------------------------------------


def test_policy_at_the_from_domain() -> None:
    txt = zone({"_dmarc.example.co.uk": ["v=DMARC1; p=reject; sp=none", "v=spf1 -all"]})
    found = find_dmarc_policy(txt, "Example.co.uk")
    assert found == DMARCPolicy("v=DMARC1; p=reject; sp=none", "example.co.uk", "reject", "r", "r")


def test_subdomain_falls_back_to_the_organizational_domain_and_its_sp() -> None:
    txt = zone({"_dmarc.example.co.uk": ["v=DMARC1; p=reject; sp=quarantine; aspf=s"]})
    found = find_dmarc_policy(txt, "news.example.co.uk")
    assert found is not None
    assert (found.domain, found.policy, found.aspf) == ("example.co.uk", "quarantine", "s")
    # the last two labels would have asked _dmarc.co.uk, a public suffix
    assert txt.asked == ["_dmarc.news.example.co.uk", "_dmarc.example.co.uk"]


@pytest.mark.parametrize(
    "records",
    [
        [],
        ["v=DMARC1; p=reject", "v=DMARC1; p=none"],  # several: none applies
        ["v=DMARC1; p=sometimes"],  # checkdmarc refuses it
    ],
)
def test_no_policy_to_apply(records: list[str]) -> None:
    assert find_dmarc_policy(zone({"_dmarc.example.test": records}), "example.test") is None


# -- the From domain and the result (RFC 7489 §4.2, §6.6.1) -----------------------------------


@pytest.mark.parametrize(
    ("values", "domain"),
    [
        (["CEO <ceo@Example.Test>"], "example.test"),
        (["a@example.test", "b@example.test"], None),  # two From headers
        (["a@example.test, b@example.org"], None),  # two addresses in one
        (["undisclosed"], None),
        ([], None),
    ],
)
def test_header_from_domain(values: list[str], domain: str | None) -> None:
    assert header_from_domain(values) == domain


RELAXED = DMARCPolicy("v=DMARC1; p=quarantine", "example.co.uk", "quarantine", "r", "r")
STRICT = DMARCPolicy(
    "v=DMARC1; p=quarantine; adkim=s; aspf=s", "example.co.uk", "quarantine", "s", "s"
)


@pytest.mark.parametrize(
    ("policy", "spf", "dkim", "result"),
    [
        (RELAXED, ("pass", "bounce.example.co.uk"), [], "pass"),
        (STRICT, ("pass", "bounce.example.co.uk"), [], "fail"),
        (STRICT, ("pass", "example.co.uk"), [], "pass"),
        (RELAXED, ("pass", "other.co.uk"), [], "fail"),  # SPF passes for someone else
        (
            RELAXED,
            ("none", ""),
            [("fail", "example.co.uk"), ("pass", "mail.example.co.uk")],
            "pass",
        ),
        (STRICT, ("none", ""), [("pass", "mail.example.co.uk")], "fail"),
        (RELAXED, ("temperror", "example.co.uk"), [("fail", "example.co.uk")], "temperror"),
        (RELAXED, ("none", ""), [("temperror", "mail.example.co.uk")], "temperror"),
        # an unaligned identity could never have passed: its DNS trouble is no excuse (the
        # stack's null sender: HELO name outside the lab DNS, which refuses it)
        (RELAXED, ("temperror", "maildrill.invalid"), [], "fail"),
        (RELAXED, ("none", ""), [("temperror", "other.co.uk")], "fail"),
        (RELAXED, ("fail", "example.co.uk"), [], "fail"),
    ],
)
def test_dmarc_result(
    policy: DMARCPolicy, spf: tuple[str, str], dkim: list[tuple[str, str]], result: str
) -> None:
    assert dmarc_result(policy, "example.co.uk", spf, dkim) == result


# -- dkimpy's DNS hook ---------------------------------------------------------------------------


def _key_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


MESSAGE = b"From: ceo@example.co.uk\r\nTo: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def test_dkim_dnsfunc_verifies_against_the_lookup() -> None:
    pem, record = _key_pair()
    signed = dkim.sign(MESSAGE, b"mail", b"example.co.uk", pem, include_headers=[b"from"])
    txt = zone({"mail._domainkey.example.co.uk": [record]})
    assert dkim.verify(signed + MESSAGE, dnsfunc=dkim_dnsfunc(txt))
    assert txt.asked == ["mail._domainkey.example.co.uk"]
    _, other = _key_pair()
    wrong = zone({"mail._domainkey.example.co.uk": [other]})
    assert not dkim.verify(signed + MESSAGE, dnsfunc=dkim_dnsfunc(wrong))
    assert not dkim.verify(signed + MESSAGE, dnsfunc=dkim_dnsfunc(zone({})))


def test_dkim_results_verify_every_signature_in_turn() -> None:
    # RFC 7489 §4.2: any aligned passing signature counts, so a receiver must see past a
    # first one that fails (here: signed by a key the DNS no longer serves)
    pem, record = _key_pair()
    stale, _ = _key_pair()
    good = dkim.sign(MESSAGE, b"mail", b"example.co.uk", pem, include_headers=[b"from"])
    old = dkim.sign(MESSAGE, b"mail", b"example.co.uk", stale, include_headers=[b"from"])
    txt = zone({"mail._domainkey.example.co.uk": [record]})
    signed = old + good + MESSAGE
    assert dkim_signature_count(signed) == 2
    found = list(dkim_results(signed, txt))
    assert [(r.result, r.domain, r.selector) for r in found] == [
        ("fail", "example.co.uk", "mail"),
        ("pass", "example.co.uk", "mail"),
    ]
    assert found[1].detail == "signature verifies"


def test_dkim_results_of_an_unsigned_and_a_broken_message() -> None:
    assert list(dkim_results(MESSAGE, zone({}))) == []
    # a signature without the tags RFC 6376 §3.5 requires: dkimpy refuses it
    broken = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.co.uk\r\n" + MESSAGE
    (result,) = dkim_results(broken, zone({}))
    assert result.result == "permerror" and result.detail.startswith("dkimpy: "), result
    # a key shorter than minkey is refused (RFC 8301 §3.2: verifiers reject < 1024 bits)
    pem, record = _key_pair()  # 1024 bits
    signed = dkim.sign(MESSAGE, b"mail", b"example.co.uk", pem, include_headers=[b"from"])
    txt = zone({"mail._domainkey.example.co.uk": [record]})
    assert [r.result for r in dkim_results(signed + MESSAGE, txt)] == ["pass"]
    assert [r.result for r in dkim_results(signed + MESSAGE, txt, minkey=2048)] == ["permerror"]


# -- the stack's DMARC milter applies them ---------------------------------------------------


SPF_PASS = {"other.co.uk": "v=spf1 ip4:127.0.0.5 -all", "news.example.co.uk": "v=spf1 +all"}


def _milter_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def pyspf(name: str, qtype: str, *args: object, **kwargs: object) -> list[Any]:
        found = SPF_PASS.get(name.lower().rstrip("."))
        return [((name, "TXT"), [found.encode()])] if qtype == "TXT" and found else []

    monkeypatch.setattr(spf, "DNSLookup", pyspf)
    dmarc = {"_dmarc.example.co.uk": ["v=DMARC1; p=quarantine; pct=100"]}
    monkeypatch.setattr(dmarc_milter, "_txt", zone(dmarc))


def _message(mail_from: str) -> dmarc_milter.Message:
    return dmarc_milter.Message(
        client="127.0.0.5",
        helo="mx.other.co.uk",
        mail_from=mail_from,
        headers=[("From", "CEO <ceo@example.co.uk>"), ("Subject", "pay")],
        body=bytearray(b"pay now\r\n"),
    )


def test_milter_quarantines_spf_pass_of_another_co_uk_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RFC 7489 §3.1: other.co.uk and example.co.uk are different Organizational Domains;
    # the last two labels (co.uk) called them one and let the spoof pass
    _milter_dns(monkeypatch)
    result, policy, text = dmarc_milter.evaluate(_message("bounce@other.co.uk"))
    assert (result, policy) == ("fail", "quarantine"), text


def test_milter_passes_spf_of_a_subdomain(monkeypatch: pytest.MonkeyPatch) -> None:
    _milter_dns(monkeypatch)
    result, _, text = dmarc_milter.evaluate(_message("bounce@news.example.co.uk"))
    assert result == "pass", text
    assert text == "dmarc=pass (p=quarantine) header.from=example.co.uk"


def test_milter_fails_a_null_sender_whose_helo_dns_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    # the stack's Knot refuses names outside its zone, so pyspf says temperror for the
    # HELO identity of a null sender; that identity never aligns, so DMARC still fails
    _milter_dns(monkeypatch)

    def refused(name: str, *args: object, **kwargs: object) -> list[Any]:
        raise spf.TempError(f"DNS REFUSED {name}")

    monkeypatch.setattr(spf, "DNSLookup", refused)
    result, policy, text = dmarc_milter.evaluate(_message(""))
    assert (result, policy) == ("fail", "quarantine"), text
