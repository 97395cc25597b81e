"""The profile rules and certificate helpers the TLS checks judge with (no network)."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_parameters

from maildrill.target import POLICIES
from maildrill.tls.certificates import host_matches
from maildrill.tls.dhgroups import FFDHE, MODP, ffdhe, is_ffdhe, known_group, modp
from maildrill.tls.policy import forward_secret, profile_for, weaknesses


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_a_target_may_name_has_its_profile(policy: str) -> None:
    # target.POLICIES is the one list of names (target files, --policy); each has a profile
    assert profile_for(policy).name == policy


@pytest.mark.parametrize(
    ("policy", "version", "allowed"),
    [
        ("seed", "TLSv1", False),  # S14: !SSLv2,!SSLv3,!TLSv1
        ("seed", "TLSv1.1", True),  # ... and nothing more, as the article writes it
        ("mozilla-intermediate", "TLSv1.1", False),
        ("mozilla-intermediate", "TLSv1.2", True),
        ("mozilla-modern", "TLSv1.2", False),
        ("ncsc", "TLSv1.1", False),  # NCSC-NL v2.1: TLS 1.1 is "phase out"
        ("ncsc", "TLSv1.3", True),
    ],
)
def test_versions_by_profile(policy: str, version: str, allowed: bool) -> None:
    assert profile_for(policy).version_allowed(version) is allowed


@pytest.mark.parametrize(
    ("policy", "iana", "openssl", "allowed"),
    [
        ("seed", "TLS_DH_anon_WITH_AES_128_CBC_SHA", "ADH-AES128-SHA", False),  # !aNULL
        ("seed", "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", True),  # HIGH in OpenSSL
        ("seed", "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", True),
        ("mozilla-intermediate", "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", False),
        ("ncsc", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", True),
        ("ncsc", "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", False),
    ],
)
def test_suites_by_profile(policy: str, iana: str, openssl: str, allowed: bool) -> None:
    assert profile_for(policy).suite_allowed(iana, openssl) is allowed


def test_weak_suite_classes() -> None:
    assert weaknesses("TLS_RSA_WITH_RC4_128_MD5") == ["RC4", "MD5"]
    assert weaknesses("TLS_RSA_WITH_3DES_EDE_CBC_SHA") == ["3DES"]
    assert weaknesses("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA") == ["EXPORT", "DES"]
    assert weaknesses("TLS_RSA_WITH_NULL_SHA256") == ["NULL"]
    assert weaknesses("TLS_ECDH_anon_WITH_AES_128_CBC_SHA") == ["anonymous"]
    assert weaknesses("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") == []


def test_forward_secrecy_by_key_exchange() -> None:
    assert forward_secret("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLSv1")
    assert forward_secret("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "TLSv1.2")
    assert not forward_secret("TLS_RSA_WITH_AES_128_GCM_SHA256", "TLSv1.2")
    assert forward_secret("TLS_AES_128_GCM_SHA256", "TLSv1.3")
    assert not forward_secret("SSL_CK_RC4_128_WITH_MD5", "SSLv2")


@pytest.mark.parametrize(
    ("host", "names", "covered"),
    [
        ("smtp.example.test", ["smtp.example.test"], True),
        ("SMTP.example.test.", ["smtp.example.test"], True),
        ("smtp.example.test", ["*.example.test"], True),
        ("a.smtp.example.test", ["*.example.test"], False),  # RFC 6125 §6.4.3: one label
        ("example.test", ["*.example.test"], False),
        ("imap.example.test", ["mx1.example.test", "smtp.example.test"], False),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("127.0.0.1", ["localhost"], False),
    ],
)
def test_san_matching(host: str, names: list[str], covered: bool) -> None:
    assert host_matches(host, names) is covered


@pytest.mark.parametrize(
    ("group", "prime"),
    [(f"ffdhe{n}", lambda n=n: ffdhe(n)) for n in FFDHE]
    + [(f"modp_{n}", lambda n=n: modp(n)) for n in MODP if n >= 1536],
)
def test_dh_groups_are_openssls(group: str, prime: object) -> None:
    """The primes built from the RFC formulas are the ones OpenSSL knows by name."""
    pem = subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{group}"],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    expected = load_pem_parameters(pem).parameter_numbers().p  # type: ignore[attr-defined]
    assert callable(prime) and prime() == expected
    assert known_group(expected) is not None
    assert is_ffdhe(expected) is group.startswith("ffdhe")


def test_oakley_groups_and_own_primes() -> None:
    # RFC 2409 §6.2: the 1024-bit Oakley group 2 begins with π's bits after 64 ones
    assert f"{modp(1024):x}".startswith("ffffffffffffffffc90fdaa22168c234")
    assert known_group(modp(768)) == "RFC 2409 Oakley group 1 (768 bits)"
    assert known_group(modp(2048) + 2) is None
