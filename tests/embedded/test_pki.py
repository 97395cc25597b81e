"""The lab certificate (seed S10): chain to the lab CA, SAN covering every service name."""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from maildrill.target import Target

from .conftest import DOMAIN, port

NAMES = [f"{n}.{DOMAIN}" for n in ("mx1", "mx2", "smtp", "imap", "pop3", "webmail")] + [DOMAIN]


def _peer_cert(target: Target, role: str, server_hostname: str) -> x509.Certificate:
    ctx = ssl.create_default_context(cafile=str(target.ca_path))  # hostname checked too
    with (
        socket.create_connection(("127.0.0.1", port(target, role)), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_certificate_san_covers_every_service_name(target: Target) -> None:
    cert = _peer_cert(target, "imaps", f"imap.{DOMAIN}")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(NAMES)


def test_certificate_key_and_signature(target: Target) -> None:
    cert = _peer_cert(target, "pop3s", f"pop3.{DOMAIN}")
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 364 <= lifetime.days <= 366


@pytest.mark.parametrize("name", [f"smtp.{DOMAIN}", f"webmail.{DOMAIN}", DOMAIN])
def test_hostname_verification_passes(target: Target, name: str) -> None:
    _peer_cert(target, "smtps", name)
