"""DANE TLSA records for SMTP (RFC 7672, RFC 6698) and the certificate a server presents.

Usage::

    cert = served_certificate(target, endpoint)            # DER of the leaf
    matches(rdata, cert)                                     # for usage 3 (DANE-EE)
"""

from __future__ import annotations

import hashlib
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from maildrill.errors import ProtocolError
from maildrill.smtp_protocol import EHLO_NAME, SERVICE_READY
from maildrill.target import Endpoint, Target
from maildrill.tls.context import tls_context
from maildrill.wire import Wire

__all__ = ["association", "served_certificate", "tlsa_name"]

DANE_TA, DANE_EE = 2, 3  # RFC 7218 §2.1; RFC 7672 §3.1.3: PKIX usages 0/1 are not for SMTP


def tlsa_name(host: str, port: int = 25) -> str:
    """``_25._tcp.<host>`` (RFC 7672 §2.2: the TLSA base domain of an MX host)."""
    return f"_{port}._tcp.{host}"


def association(cert_der: bytes, selector: int, mtype: int) -> bytes:
    """The certificate association data of ``cert_der`` (RFC 6698 §2.1.2, §2.1.3)."""
    if selector == 0:
        data = cert_der
    elif selector == 1:
        key = x509.load_der_x509_certificate(cert_der).public_key()
        data = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    else:
        raise ValueError(f"selector {selector} is not defined (RFC 6698 §2.1.2)")
    if mtype == 0:
        return data
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    raise ValueError(f"matching type {mtype} is not defined (RFC 6698 §2.1.3)")


def served_certificate(target: Target, endpoint: Endpoint, transcript: list[str]) -> bytes:
    """The leaf certificate the SMTP endpoint presents after STARTTLS (not verified: DANE
    judges it, not the CA system). The session's lines are appended to ``transcript``."""
    with Wire.open(target, endpoint) as wire:
        transcript.extend(wire.transcript)
        wire.transcript = transcript  # later lines land in the caller's evidence
        if not endpoint.implicit_tls:
            wire.read_smtp()
            wire.smtp(f"EHLO {EHLO_NAME}")
            reply = wire.smtp("STARTTLS")
            if reply.code != SERVICE_READY:
                raise ProtocolError(f"{endpoint}: STARTTLS answered {reply.code} {reply.text}")
            wire.start_tls(tls_context(target, verify=False))
        sock = wire.sock
        assert isinstance(sock, ssl.SSLSocket)
        der = sock.getpeercert(binary_form=True)
        if der is None:
            raise ProtocolError(f"{endpoint}: no certificate after the TLS handshake")
        return der
