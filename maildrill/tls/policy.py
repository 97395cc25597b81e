"""TLS policy profiles and cipher-suite classification, for the TLS conformance checks.

A profile says which protocol versions and which cipher suites a TLS endpoint may accept.
The four profiles a target file can name (``policy = …``):

- ``seed``: seed S14 exactly as written, ``smtpd_tls_protocols = !SSLv2,!SSLv3,!TLSv1`` and
  ``smtpd_tls_ciphers = high`` with ``!aNULL:!MD5:!RC4`` excluded — TLS 1.1 is allowed;
- ``mozilla-intermediate`` / ``mozilla-modern``: Mozilla's server-side TLS profiles as
  shipped with sslyze (``sslyze.mozilla_tls_profile``, version 5.7);
- ``ncsc``: NCSC-NL "IT Security Guidelines for Transport Layer Security" v2.1 (2021):
  TLS 1.3 (good) and TLS 1.2 (sufficient) only; (EC)DHE key exchange with RSA or ECDSA
  authentication and AES-GCM, ChaCha20-Poly1305 (good) or AES-CBC (sufficient).

Usage::

    profile = profile_for("seed")
    profile.version_allowed("TLSv1.1")           # True
    profile.suite_allowed("TLS_DH_anon_WITH_AES_128_CBC_SHA", "ADH-AES128-SHA")  # False
    weaknesses("TLS_RSA_WITH_RC4_128_MD5")       # ["RC4", "MD5"]
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    TlsConfigurationEnum,
)

__all__ = [
    "VERSIONS",
    "Profile",
    "forward_secret",
    "is_cbc",
    "profile_for",
    "weaknesses",
]

# every version sslyze probes, oldest first, in the spelling Postfix and Mozilla use
VERSIONS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

SEED_CIPHERS = "HIGH:!aNULL:!MD5:!RC4"  # seed S14, OpenSSL cipher-list syntax


@dataclass(frozen=True)
class Profile:
    """What one policy profile allows."""

    name: str
    versions: frozenset[str]  # accepted versions outside this set fail TLS-VERSIONS
    ciphers: str  # the profile's cipher rule, as written in its source
    reference: str
    _suite_rule: Callable[[str, str], bool]
    # the server must enforce its own suite order (TLS-CIPHER-ORDER fails, else warns)
    server_order: bool = False
    # the profile allows CBC suites at all (TLS-CBC warns; where it allows none, fails)
    cbc_allowed: bool = True

    def version_allowed(self, version: str) -> bool:
        return version in self.versions

    def suite_allowed(self, iana_name: str, openssl_name: str) -> bool:
        return self._suite_rule(iana_name, openssl_name)


# -- seed S14 ---------------------------------------------------------------------------------


@cache
def _openssl_cipher_names(rule: str) -> frozenset[str]:
    """The suites an OpenSSL cipher string selects, by this machine's OpenSSL."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # SECLEVEL=0 so the list is the rule's own selection, not cut by the local defaults
    ctx.set_ciphers(f"{rule}:@SECLEVEL=0")
    return frozenset(str(c["name"]) for c in ctx.get_ciphers())


def _seed_suite(iana: str, openssl: str) -> bool:
    return openssl in _openssl_cipher_names(SEED_CIPHERS)


# -- Mozilla (sslyze's copy of the profiles) --------------------------------------------------


def _mozilla(name: str, which: TlsConfigurationEnum) -> Profile:
    config = MozillaTlsConfiguration.get(which)
    allowed = frozenset(config.ciphers.iana) | frozenset(config.ciphersuites)
    return Profile(
        name=name,
        versions=frozenset(config.tls_versions),
        ciphers=" ".join(sorted(allowed)),
        reference=f"Mozilla Server Side TLS 5.7, {which.value} configuration",
        _suite_rule=lambda iana, _openssl: iana in allowed,
        # 5.7 lets the client choose under intermediate and modern: every suite is strong
        server_order=bool(config.server_preferred_order),
        cbc_allowed=any(is_cbc(suite) for suite in allowed),
    )


# -- NCSC-NL TLS guidelines v2.1 ----------------------------------------------------------------

_NCSC_TLS13 = frozenset(
    {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}
)
# table 4 (good + sufficient): ECDHE or DHE, RSA or ECDSA, AES-GCM / ChaCha20 / AES-CBC
_NCSC_TLS12 = re.compile(
    r"^TLS_(ECDHE|DHE)_(RSA|ECDSA)_WITH_"
    r"(AES_256_GCM|AES_128_GCM|CHACHA20_POLY1305|AES_256_CBC|AES_128_CBC)_SHA(384|256)?$"
)


def _ncsc_suite(iana: str, _openssl: str) -> bool:
    return iana in _NCSC_TLS13 or bool(_NCSC_TLS12.match(iana))


@cache
def _profiles() -> dict[str, Profile]:
    return {
        "seed": Profile(
            name="seed",
            versions=frozenset({"TLSv1.1", "TLSv1.2", "TLSv1.3"}),
            ciphers=SEED_CIPHERS,
            reference="seed S14 (!SSLv2,!SSLv3,!TLSv1; high:!aNULL:!MD5:!RC4)",
            _suite_rule=_seed_suite,
        ),
        "mozilla-intermediate": _mozilla(
            "mozilla-intermediate", TlsConfigurationEnum.MOZILLA_INTERMEDIATE
        ),
        "mozilla-modern": _mozilla("mozilla-modern", TlsConfigurationEnum.MOZILLA_MODERN),
        "ncsc": Profile(
            name="ncsc",
            versions=frozenset({"TLSv1.2", "TLSv1.3"}),
            ciphers="TLS 1.3: AES-GCM, ChaCha20; TLS 1.2: (EC)DHE-RSA/ECDSA with "
            "AES-GCM, ChaCha20-Poly1305, AES-CBC",
            reference="NCSC-NL TLS guidelines v2.1 (2021), tables 2 and 4 (good + sufficient)",
            _suite_rule=_ncsc_suite,
            server_order=True,  # v2.1: the server enforces its order, good suites first
            cbc_allowed=True,  # AES-CBC is "sufficient" (table 4)
        ),
    }


def profile_for(name: str) -> Profile:
    """The profile a target file's ``policy`` names; ``KeyError`` for an unknown one."""
    return _profiles()[name]


# -- weak suites, whatever the profile (RFC 9325 §4.1, RFC 7465, RFC 8996) ----------------------

_WEAK_PARTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("NULL", re.compile(r"_WITH_NULL_|_NULL_WITH_|^SSL_CK_NULL")),
    ("anonymous", re.compile(r"_anon_|^TLS_NULL_WITH")),
    ("EXPORT", re.compile(r"EXPORT")),
    ("RC4", re.compile(r"_RC4_")),
    ("MD5", re.compile(r"_MD5$")),
    ("3DES", re.compile(r"3DES|DES_192_EDE3")),
    ("DES", re.compile(r"_DES(40)?_(?!192)")),  # single DES; not 3DES's DES_192_EDE3
)


def weaknesses(iana_name: str, *, anonymous: bool = False) -> list[str]:
    """The weak properties of a suite by its IANA name (empty when it is none of them)."""
    found = [label for label, pattern in _WEAK_PARTS if pattern.search(iana_name)]
    if anonymous and "anonymous" not in found:
        found.append("anonymous")
    return found


def is_cbc(iana_name: str) -> bool:
    """Whether a suite encrypts in CBC mode (MAC-then-encrypt: Lucky13; TLS 1.0: BEAST)."""
    return "_CBC_" in iana_name


def forward_secret(iana_name: str, version: str) -> bool:
    """Whether a suite's key exchange is ephemeral (TLS 1.3 always is, RFC 8446 §2)."""
    if version == "TLSv1.3":
        return True
    if not iana_name.startswith("TLS_") or "_WITH_" not in iana_name:
        return False  # SSLv2 suites (SSL_CK_…) all use RSA key transport
    kex = iana_name.removeprefix("TLS_").split("_WITH_", 1)[0]
    return kex.startswith(("ECDHE_", "DHE_")) or kex in {"ECDHE", "DHE", "DH_anon", "ECDH_anon"}
