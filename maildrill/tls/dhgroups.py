"""The well-known finite-field Diffie-Hellman primes, built from their RFC formulas.

A server's DHE prime is judged by size and by whether it is *shared*: the IKE/MODP primes
of RFC 2409 and RFC 3526 are used by countless servers, so one precomputation against a
small one breaks them all (Logjam, weakdh.org). The RFC 7919 FFDHE groups are shared too,
but on purpose: they are ≥ 2048 bits and TLS negotiates them by name (RFC 7919 §1).

Both families are ``2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * c) + k)`` with c = π
(MODP) or e (FFDHE) and a per-group k (RFC 3526 §2-§7, RFC 2409 §6.1-§6.2, RFC 7919
appendix A), so they are computed here instead of copied as kilobytes of hex.

Usage::

    known_group(p)        # "RFC 3526 MODP group 14 (2048 bits)", or None
    is_ffdhe(p)           # True for the five RFC 7919 groups
    parameters_pem(modp(1024))   # a PKCS#3 file for a server's DH parameter setting
"""

from __future__ import annotations

import base64
from functools import cache

__all__ = ["FFDHE", "MODP", "ffdhe", "is_ffdhe", "known_group", "modp", "parameters_pem"]

GUARD = 64  # extra bits of precision for the series

# bits -> (name, k)
MODP: dict[int, tuple[str, int]] = {
    768: ("RFC 2409 Oakley group 1", 149686),
    1024: ("RFC 2409 Oakley group 2", 129093),
    1536: ("RFC 3526 MODP group 5", 741804),
    2048: ("RFC 3526 MODP group 14", 124476),
    3072: ("RFC 3526 MODP group 15", 1690314),
    4096: ("RFC 3526 MODP group 16", 240904),
    6144: ("RFC 3526 MODP group 17", 929484),
    8192: ("RFC 3526 MODP group 18", 4743158),
}
FFDHE: dict[int, tuple[str, int]] = {
    2048: ("RFC 7919 ffdhe2048", 560316),
    3072: ("RFC 7919 ffdhe3072", 2625351),
    4096: ("RFC 7919 ffdhe4096", 5736041),
    6144: ("RFC 7919 ffdhe6144", 15705020),
    8192: ("RFC 7919 ffdhe8192", 10965728),
}


def _arctan_inverse(x: int, one: int) -> int:
    """arctan(1/x) * one, by its Taylor series in integers."""
    total, power, n, sign = 0, one // x, 1, 1
    while power:
        total += sign * (power // n)
        power //= x * x
        n += 2
        sign = -sign
    return total


@cache
def _pi_bits(bits: int) -> int:
    """floor(π * 2^bits) (Machin: π = 16 arctan 1/5 - 4 arctan 1/239)."""
    one = 1 << (bits + GUARD)
    return (16 * _arctan_inverse(5, one) - 4 * _arctan_inverse(239, one)) >> GUARD


@cache
def _e_bits(bits: int) -> int:
    """floor(e * 2^bits) (e = Σ 1/k!)."""
    one = 1 << (bits + GUARD)
    total, term, k = 0, one, 0
    while term:
        total += term
        k += 1
        term //= k
    return total >> GUARD


def _prime(n: int, constant: int, k: int) -> int:
    return (1 << n) - (1 << (n - 64)) - 1 + ((constant + k) << 64)


def modp(bits: int) -> int:
    """The RFC 2409/3526 MODP prime of ``bits`` bits."""
    return _prime(bits, _pi_bits(bits - 130), MODP[bits][1])


def ffdhe(bits: int) -> int:
    """The RFC 7919 FFDHE prime of ``bits`` bits."""
    return _prime(bits, _e_bits(bits - 130), FFDHE[bits][1])


def parameters_pem(prime: int, generator: int = 2) -> bytes:
    """PKCS#3 DH parameters, PEM (``BEGIN DH PARAMETERS``): what Postfix's
    ``smtpd_tls_dh1024_param_file``, Dovecot's ``ssl_dh`` and ``SSLContext.load_dh_params``
    read. Written by hand: cryptography writes these primes as X9.42, which Postfix 3.7
    cannot decode (it falls back to its built-in group)."""
    body = _der_integer(prime) + _der_integer(generator)
    der = b"\x30" + _der_length(len(body)) + body  # DHParameter ::= SEQUENCE {p, g}
    text = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return ("-----BEGIN DH PARAMETERS-----\n" + "\n".join(lines)
            + "\n-----END DH PARAMETERS-----\n").encode("ascii")  # fmt: skip


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading 0: positive
    return b"\x02" + _der_length(len(raw)) + raw


@cache
def _table() -> dict[int, str]:
    table = {modp(n): f"{name} ({n} bits)" for n, (name, _k) in MODP.items()}
    table |= {ffdhe(n): f"{name} ({n} bits)" for n, (name, _k) in FFDHE.items()}
    return table


def known_group(prime: int) -> str | None:
    """The RFC group ``prime`` is, by name; ``None`` for a prime of the server's own."""
    return _table().get(prime)


def is_ffdhe(prime: int) -> bool:
    """Whether ``prime`` is one of RFC 7919's negotiated FFDHE groups."""
    return (known_group(prime) or "").startswith("RFC 7919")
