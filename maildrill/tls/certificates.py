"""Reading X.509 certificates for the certificate controls (S10): names, keys, signatures.

Usage::

    names = san_names(cert)                          # ["mx1.example.test", "*.example.test"]
    host_matches("smtp.example.test", names)         # True (RFC 6125 §6.4.3 wildcard)
    key = public_key_info(cert)                      # KeyInfo("RSA", 2048, ok=True)
    signature_hash(cert)                             # "sha256"
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

__all__ = [
    "CHAIN_HEADER",
    "MIN_EC_BITS",
    "MIN_RSA_BITS",
    "WEAK_SIGNATURE_HASHES",
    "KeyInfo",
    "chain_table",
    "days_left",
    "host_matches",
    "is_self_signed",
    "public_key_info",
    "revocation_urls",
    "san_names",
    "signature_hash",
    "subject",
]

MIN_RSA_BITS = 2048  # RFC 9325 §4.3, NCSC-NL, Mozilla intermediate
MIN_EC_BITS = 256
# RFC 9155 deprecates MD5 and SHA-1 signatures in TLS 1.2; CA/B Forum BR §7.1.3
WEAK_SIGNATURE_HASHES = frozenset({"md2", "md4", "md5", "sha1"})


@dataclass(frozen=True)
class KeyInfo:
    kind: str
    bits: int
    ok: bool

    def __str__(self) -> str:
        return f"{self.kind} {self.bits} bits"


def subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def san_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of the subjectAltName extension (empty if none)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(ext.value.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return names


def revocation_urls(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(OCSP responders from the AIA extension, CRL distribution points), URIs only.

    Example: ``revocation_urls(leaf)`` → ``(["http://ocsp.ca.test"], ["http://ca.test/ca.crl"])``
    """
    ocsp: list[str] = []
    crl: list[str] = []
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp = [
            d.access_location.value
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        pass
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        crl = [
            name.value
            for point in points
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        pass
    return ocsp, crl


def host_matches(host: str, names: list[str]) -> bool:
    """Whether ``host`` is covered by one of ``names`` (RFC 6125 §6.4; no CN fallback)."""
    host = host.rstrip(".").lower()
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    for name in names:
        name = name.rstrip(".").lower()
        if literal is not None:
            try:
                if ipaddress.ip_address(name) == literal:
                    return True
            except ValueError:
                continue
            continue
        if name == host:
            return True
        # a wildcard stands for exactly one whole left-most label (RFC 6125 §6.4.3)
        if name.startswith("*.") and "." in host:
            label, _, rest = host.partition(".")
            if label and rest == name[2:]:
                return True
    return False


def public_key_info(cert: x509.Certificate) -> KeyInfo:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return KeyInfo("RSA", key.key_size, key.key_size >= MIN_RSA_BITS)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyInfo(
            f"EC {key.curve.name}", key.curve.key_size, key.curve.key_size >= MIN_EC_BITS
        )
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo("Ed25519", 256, True)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyInfo("Ed448", 456, True)
    if isinstance(key, dsa.DSAPublicKey):
        return KeyInfo("DSA", key.key_size, False)  # not allowed in TLS 1.3 (RFC 8446 §4.2.3)
    return KeyInfo(type(key).__name__, 0, False)


def signature_hash(cert: x509.Certificate) -> str:
    """The hash of the certificate's signature (``"sha256"``), or the scheme for EdDSA."""
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None:
        return algorithm.name
    return cert.signature_algorithm_oid._name  # Ed25519/Ed448 sign without a separate hash


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def days_left(cert: x509.Certificate, now: datetime | None = None) -> float:
    """Days until the certificate expires (negative once it has)."""
    now = now or datetime.now(UTC)
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def chain_table(node: str, chain: list[x509.Certificate]) -> list[list[str]]:
    """Evidence rows (no header) for a received chain, leaf first."""
    rows = []
    for depth, cert in enumerate(chain):
        rows.append(
            [
                node,
                str(depth),
                subject(cert),
                cert.issuer.rfc4514_string(),
                ", ".join(san_names(cert)) if depth == 0 else "",
                str(public_key_info(cert)),
                signature_hash(cert),
                cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC"),
            ]
        )
    return rows


CHAIN_HEADER = ["node", "depth", "subject", "issuer", "SAN", "key", "signature hash", "not after"]
