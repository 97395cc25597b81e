"""RRSIG validation (RFC 4034 §3.1.8.1, RFC 4035 §5.3) with cryptography.

dnspython 2.9's ``dns.dnssec.validate`` needs cryptography ≥ 50; the harness pins what
Debian-era sslyze accepts (46), so the few algorithms a mail domain uses are checked here:
RSASHA256 (8), RSASHA512 (10), ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15).

Usage::

    problem = verify(rrset, rrsig, dnskeys, now=time.time())   # None when it validates
"""

from __future__ import annotations

import struct
from typing import Any

import dns.rdataclass
import dns.rrset
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["signature_data", "verify"]

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    8: hashes.SHA256,
    10: hashes.SHA512,
    13: hashes.SHA256,
    14: hashes.SHA384,
}
_CURVES: dict[int, ec.EllipticCurve] = {13: ec.SECP256R1(), 14: ec.SECP384R1()}


def signature_data(rrset: dns.rrset.RRset, rrsig: Any) -> bytes:
    """What an RRSIG signs: its RDATA without the signature, then the RRset in canonical
    form with the original TTL (RFC 4034 §3.1.8.1, §6.2, §6.3)."""
    head = struct.pack(
        "!HBBIIIH",
        rrsig.type_covered,
        rrsig.algorithm,
        rrsig.labels,
        rrsig.original_ttl,
        rrsig.expiration,
        rrsig.inception,
        rrsig.key_tag,
    )
    data: bytes = head + rrsig.signer.canonicalize().to_wire()
    owner: bytes = rrset.name.canonicalize().to_wire() or b""
    rdatas = sorted(r.to_digestable() for r in rrset)
    fixed = struct.pack("!HHI", rrset.rdtype, dns.rdataclass.IN, rrsig.original_ttl)
    for rdata in rdatas:
        data += owner + fixed + struct.pack("!H", len(rdata)) + rdata
    return data


def verify(
    rrset: dns.rrset.RRset, rrsigs: dns.rrset.RRset, dnskeys: dns.rrset.RRset, *, now: float
) -> str | None:
    """None when one RRSIG of ``rrsigs`` validates ``rrset`` with a key of ``dnskeys``;
    otherwise why none does."""
    problems = []
    for rrsig in rrsigs:
        sig: Any = rrsig
        if not sig.inception <= now <= sig.expiration:
            problems.append(f"RRSIG (key {sig.key_tag}) outside its validity period")
            continue
        data = signature_data(rrset, sig)
        for key in dnskeys:
            dnskey: Any = key
            if dnskey.algorithm != sig.algorithm or _key_tag(dnskey) != sig.key_tag:
                continue
            try:
                _check(dnskey, sig.algorithm, sig.signature, data)
            except InvalidSignature:
                problems.append(f"RRSIG (key {sig.key_tag}) does not verify")
                continue
            except ValueError as exc:
                problems.append(f"RRSIG (key {sig.key_tag}): {exc}")
                continue
            return None
        else:
            problems.append(f"no DNSKEY with tag {sig.key_tag} and algorithm {sig.algorithm}")
    return "; ".join(problems) or "no RRSIG"


def _key_tag(dnskey: Any) -> int:
    # RFC 4034 Appendix B
    wire: bytes = dnskey.to_digestable()
    total: int = sum(b << 8 if i % 2 == 0 else b for i, b in enumerate(wire))
    total += (total >> 16) & 0xFFFF
    return total & 0xFFFF


def _check(dnskey: Any, algorithm: int, signature: bytes, data: bytes) -> None:
    key: bytes = dnskey.key
    if algorithm in (8, 10):
        # RFC 3110 §2: exponent length (1 or 3 octets), exponent, modulus
        if key[0] == 0:
            elen, key = int.from_bytes(key[1:3], "big"), key[3:]
        else:
            elen, key = key[0], key[1:]
        public = rsa.RSAPublicNumbers(
            int.from_bytes(key[:elen], "big"), int.from_bytes(key[elen:], "big")
        ).public_key()
        public.verify(signature, data, padding.PKCS1v15(), _HASHES[algorithm]())
    elif algorithm in _CURVES:
        # RFC 6605 §4: the key is x | y, the signature r | s
        half = len(key) // 2
        point = ec.EllipticCurvePublicNumbers(
            int.from_bytes(key[:half], "big"), int.from_bytes(key[half:], "big"), _CURVES[algorithm]
        ).public_key()
        size = len(signature) // 2
        der = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
        point.verify(der, data, ec.ECDSA(_HASHES[algorithm]()))
    elif algorithm == 15:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
    else:
        raise ValueError(f"algorithm {algorithm} is not supported here")
