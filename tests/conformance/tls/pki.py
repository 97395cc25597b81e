"""Certificates for the TLS proofs, good or with exactly one weakness, and an HTTPS
listener that serves one of them: the cheapest TLS endpoint a target file can name."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from maildrill.tls.dhgroups import parameters_pem
from maildrill.tls.testpki import caa_issuer, with_revocation

__all__ = ["Leaf", "TlsServer", "https_target", "make_pki"]

_DOMAIN = "example.test"  # its leaves name pki.example.test for revocation; nothing serves it
_PKI = f"http://{caa_issuer(_DOMAIN)}"  # as maildrill.tls.testpki.with_revocation writes it


@dataclass(frozen=True)
class Leaf:
    """What the server certificate is like; the defaults are a good one for 127.0.0.1."""

    days_left: float = 90
    key_bits: int = 2048
    digest: str = "sha256"  # or "sha1": a weak signature
    dns_names: tuple[str, ...] = ()
    ip: str | None = "127.0.0.1"
    trusted: bool = True  # False: signed by a CA the target's ca_file does not hold
    revocation: bool = True  # False: no OCSP responder, no CRL distribution point


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca(label: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(_name(label))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_pki(directory: Path, leaf: Leaf = Leaf()) -> tuple[Path, Path, Path]:
    """(the CA file a target trusts, the server certificate, its key), as PEM files."""
    now = datetime.now(UTC)
    ca, ca_key = _ca("maildrill test CA")
    issuer, issuer_key = (ca, ca_key) if leaf.trusted else _ca("someone else's CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=leaf.key_bits)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in leaf.dns_names]
    if leaf.ip:
        names.append(x509.IPAddress(IPv4Address(leaf.ip)))
    if leaf.digest == "sha1":
        cert = _sign_sha1(directory, key, issuer, issuer_key, leaf)
    else:
        cert = _build(key, issuer, issuer_key, leaf, names, now)
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "server.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _build(
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    leaf: Leaf,
    names: list[x509.GeneralName],
    now: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(leaf.dns_names[0] if leaf.dns_names else leaf.ip or "server"))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=leaf.days_left))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # RFC 5280 §4.2.1.1/§4.2.1.3: the validator (cryptography's) requires AKI and KU
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if leaf.revocation:  # the same OCSP and CRL places as the lab CA's leaves
        builder = with_revocation(builder, _DOMAIN)
    return builder.sign(issuer_key, hashes.SHA256())


def _sign_sha1(
    directory: Path,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    leaf: Leaf,
) -> x509.Certificate:
    """The same leaf signed with SHA-1, which cryptography no longer signs with: by the
    openssl command (Debian's openssl package, installed by scripts/)."""
    pem = serialization.Encoding.PEM
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(leaf.ip or "server"))
        .sign(key, hashes.SHA256())
    )
    files = {n: directory / f"sha1-{n}" for n in ("csr", "ca", "ca-key", "ext", "out")}
    files["csr"].write_bytes(csr.public_bytes(pem))
    files["ca"].write_bytes(issuer.public_bytes(pem))
    files["ca-key"].write_bytes(
        issuer_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files["ext"].write_text(
        f"subjectAltName = IP:{leaf.ip}\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "authorityKeyIdentifier = keyid\n"
        f"authorityInfoAccess = OCSP;URI:{_PKI}/ocsp\n"
        f"crlDistributionPoints = URI:{_PKI}/ca.crl\n",
        encoding="ascii",
    )
    subprocess.run(
        [
            "openssl", "x509", "-req", "-sha1", "-in", str(files["csr"]),
            "-CA", str(files["ca"]), "-CAkey", str(files["ca-key"]), "-set_serial", "4242",
            "-days", str(max(1, int(leaf.days_left))), "-extfile", str(files["ext"]),
            "-out", str(files["out"]),
        ],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return x509.load_pem_x509_certificate(files["out"].read_bytes())


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"webmail\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # sslyze's probes fail handshakes on purpose


@dataclass(frozen=True)
class TlsServer:
    """How the TLS server is configured; the defaults are a good one."""

    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"  # OpenSSL's order: AES-256-GCM first
    client_order: bool = False  # True: follow the client's suite order
    policy: str = "seed"
    dh_prime: int | None = None  # DHE suites use this group (maildrill.tls.dhgroups)


@contextmanager
def https_target(
    directory: Path, leaf: Leaf = Leaf(), tls: TlsServer = TlsServer()
) -> Iterator[Path]:
    """A target file whose only endpoint is HTTPS webmail on loopback serving ``leaf``.

    The server offers TLS 1.2+ with forward-secret suites only (or ``tls.ciphers``); for
    a weak key or a SHA-1 signature OpenSSL's security level is lowered so that it agrees to
    serve them at all."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_pki(directory, leaf)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if leaf.key_bits < 2048 or leaf.digest == "sha1":
        ctx.set_ciphers(f"{tls.ciphers}:@SECLEVEL=0")
    else:
        ctx.set_ciphers(tls.ciphers)
    if tls.client_order:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.dh_prime is not None:
        params = directory / "dh.pem"
        params.write_bytes(parameters_pem(tls.dh_prime))
        ctx.load_dh_params(params)
    ctx.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _Hello)
    # handshakes in the handler threads, so a failed one is closed like any request
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = directory / "target.toml"
    path.write_text(
        f'name = "webmail"\ndomain = "example.test"\nca_file = "{ca}"\n'
        f'policy = "{tls.policy}"\n\n'
        f'[endpoints.webmail]\nurl = "https://127.0.0.1:{server.server_address[1]}"\n',
        encoding="utf-8",
    )
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
