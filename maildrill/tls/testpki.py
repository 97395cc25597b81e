"""Keys for a loopback lab: a throw-away CA, one server certificate covering every service
name (seed S10), and DKIM signing keys (S15). The embedded target, the reference stack and
the tests all make theirs here.

Usage::

    pki = make_pki(Path("/tmp/lab"), service_names("example.test"))
    ctx = pki.server_context()       # for every TLS listener
    pki.ca_file                      # /tmp/lab/ca.pem, goes into the target file
    ca = make_ca(Path("/tmp/lab2"))  # one CA, several server certificates
    mail = ca.issue(["mx1.example.test"], stem="mail", key_bits=2048)
    dkim = make_dkim_key(Path("/tmp/lab/dkim.key"), 2048)
    dkim.txt                         # "v=DKIM1; k=rsa; p=MIIB..."
    caa_issuer("example.test")       # "pki.example.test": the lab CA's name in CAA records
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA",
    "PKI",
    "SERVICE_NAMES",
    "DKIMKey",
    "caa_issuer",
    "make_ca",
    "make_dkim_key",
    "make_pki",
    "service_names",
]

KEY_BITS = 2048
VALIDITY = dt.timedelta(days=365)
# the host names a lab serves; S10: one certificate whose SAN covers them all
SERVICE_NAMES = ("mx1", "mx2", "smtp", "imap", "pop3", "webmail")


def service_names(domain: str) -> list[str]:
    """``mx1.<domain>`` first (it becomes the subject CN), then the others and the domain."""
    return [*(f"{n}.{domain}" for n in SERVICE_NAMES), domain]


def caa_issuer(domain: str) -> str:
    """The name a lab CA issuing for ``domain`` answers to in CAA records (RFC 8659 §4.2):
    ``pki.<domain>``, where its leaves say its OCSP responder and CRL are."""
    return f"pki.{domain}"


@dataclass(frozen=True)
class PKI:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server context following the seed's S14 policy: TLS 1.2+, strong ciphers only."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # S14: high:!aNULL:!MD5:!RC4; restrict TLS 1.2 to forward-secret AEAD suites
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!MD5:!RC4")
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def _key(bits: int = KEY_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass(frozen=True)
class CA:
    """A lab CA that can issue more than one server certificate (the reference stack gives
    its mail services and its webmail each their own, so a weakness can touch one alone)."""

    file: Path
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    def issue(
        self,
        names: list[str],
        *,
        stem: str = "server",
        key_bits: int = KEY_BITS,
        revocation: bool = True,
    ) -> PKI:
        """A server certificate whose SAN lists ``names`` (``names[0]`` is the subject CN),
        written as ``<stem>.pem`` (with the CA: the chain to send) and ``<stem>.key``.
        With ``revocation`` the leaf names an OCSP responder and a CRL (RFC 5280
        §4.2.2.1, §4.2.1.13) at ``pki.<parent domain of names[0]>``; nothing serves them.

        Example: ``ca.issue(["mx1.example.test"], stem="mail", key_bits=1024)``
        """
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew
        key = _key(key_bits)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if revocation:
            builder = with_revocation(builder, names[0].partition(".")[2] or names[0])
        cert = builder.sign(self.key, hashes.SHA256())
        directory = self.file.parent
        pki = PKI(self.file, directory / f"{stem}.pem", directory / f"{stem}.key")
        pki.cert_file.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + self.cert.public_bytes(serialization.Encoding.PEM)  # send the chain
        )
        _write_private(pki.key_file, _pem(key, serialization.PrivateFormat.PKCS8))
        return pki


def with_revocation(builder: x509.CertificateBuilder, domain: str) -> x509.CertificateBuilder:
    """Where a client would learn that the leaf was revoked (CA/B Forum BR §7.1.2.3)."""
    base = f"http://{caa_issuer(domain)}"
    ocsp = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base}/ocsp")
    )
    crl = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(f"{base}/ca.crl")],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return builder.add_extension(x509.AuthorityInformationAccess([ocsp]), False).add_extension(
        x509.CRLDistributionPoints([crl]), False
    )


def make_ca(directory: Path, name: str = "maildrill lab CA") -> CA:
    """Generate a CA and write its certificate as ``ca.pem``; its key stays in memory."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = _key()
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca = CA(directory / "ca.pem", ca_cert, ca_key)
    ca.file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return ca


def make_pki(directory: Path, names: list[str], *, ca_name: str = "maildrill lab CA") -> PKI:
    """Generate a CA and a server certificate whose SAN lists ``names``; write PEM files.

    ``names[0]`` becomes the subject CN. Keys are written with mode 600.
    """
    return make_ca(directory, ca_name).issue(names)


@dataclass(frozen=True)
class DKIMKey:
    pem: bytes  # PKCS#1, the form dkimpy and OpenDKIM both read
    public_b64: str  # SubjectPublicKeyInfo, base64: the p= tag

    @property
    def txt(self) -> str:
        """The DNS TXT value of the selector (RFC 6376 §3.6.1)."""
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


def make_dkim_key(path: Path, bits: int = KEY_BITS) -> DKIMKey:
    """Write an RSA key for DKIM signing (mode 600) and return it with its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = _pem(key, serialization.PrivateFormat.TraditionalOpenSSL)
    _write_private(path, pem)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DKIMKey(pem, base64.b64encode(der).decode("ascii"))


def _pem(key: rsa.RSAPrivateKey, form: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file
