"""DKIM key records (RFC 6376 §3.6.1): tags, key type and size, test mode.

One parser of key records for the DNS audit (``conformance/dns``) and the behavioural probe
that reports the size of the key a signature was made with.

Usage::

    key = dkim_keys(lookups, "mail", "example.test")[0]
    key.bits, key.testing        # 2048, False
    dkim_key("mail._domainkey.example.test", "v=DKIM1; k=rsa; p=MIIB…").bits    # 2048
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from maildrill.dnsrecords.lookups import Lookups

__all__ = ["DKIMKey", "dkim_key", "dkim_keys", "parse_tags"]


@dataclass(frozen=True)
class DKIMKey:
    """One DKIM key record as published; ``problem`` says why it is unusable, if it is."""

    name: str
    record: str
    tags: dict[str, str]
    key_type: str  # k= (RFC 6376 §3.6.1: default rsa)
    bits: int | None  # RSA modulus size; None for other key types or unusable keys
    testing: bool  # t=y (RFC 6376 §3.6.1: "this domain is testing DKIM")
    problem: str | None


def parse_tags(record: str) -> dict[str, str]:
    """A DKIM/DMARC tag-list (RFC 6376 §3.2): ``"v=DKIM1; k=rsa"`` → ``{"v": "DKIM1", …}``."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags


def dkim_keys(lookups: Lookups, selector: str, domain: str) -> list[DKIMKey]:
    """Every key record at ``<selector>._domainkey.<domain>`` (normally exactly one)."""
    name = f"{selector}._domainkey.{domain}"
    return [dkim_key(name, record) for record in lookups.txt(name)]


def dkim_key(name: str, record: str) -> DKIMKey:
    """The key record ``record`` published at ``name``, read and judged."""
    tags = parse_tags(record)
    key_type = tags.get("k", "rsa").lower()
    testing = "y" in tags.get("t", "").lower().split(":")
    problem: str | None = None
    bits: int | None = None
    if "v" in tags and tags["v"] != "DKIM1":
        problem = f"v={tags['v']}, expected DKIM1 (RFC 6376 §3.6.1)"
    elif "p" not in tags:
        problem = "no p= tag (RFC 6376 §3.6.1: required)"
    elif not tags["p"]:
        problem = "p= is empty: the key is revoked (RFC 6376 §3.6.1)"
    elif key_type == "ed25519":
        # RFC 8463 §4.2: p= is the bare 32-byte key, not a SubjectPublicKeyInfo
        try:
            raw = base64.b64decode(tags["p"], validate=True)
            ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, binascii.Error) as exc:
            problem = f"p= is not an Ed25519 key (RFC 8463 §4.2): {exc}"
    elif key_type != "rsa":
        problem = f"k={key_type}: not a DKIM key type (RFC 6376 §3.6.1, RFC 8463)"
    else:
        try:
            public = load_der_public_key(base64.b64decode(tags["p"], validate=True))
        except (ValueError, binascii.Error) as exc:
            problem = f"p= is not a public key: {exc}"
        else:
            if isinstance(public, rsa.RSAPublicKey):
                bits = public.key_size
            else:
                problem = f"k=rsa but p= holds a {type(public).__name__}"
    return DKIMKey(name, record, tags, key_type, bits, testing, problem)
