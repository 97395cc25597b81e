"""Every weakness of the weak profile, shown with a plain client (ssl, smtplib, dnspython).

Each entry of ``maildrill/stack/weaknesses.toml`` has a probe here that answers "is this
weakness present?". It must answer yes on the weak stack and no on the good stack: the
conformance checks that name a weakness prove themselves against exactly these facts.
"""

from __future__ import annotations

import base64
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import dns.resolver
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from maildrill.stack import load_weaknesses
from maildrill.tls.certificates import revocation_urls
from tests.stack.conftest import RunningStack, bring_up

# SpamAssassin's Generic Test for Unsolicited Bulk Email
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

WEAKNESSES = {w.id: w for w in load_weaknesses()}
Probe = Callable[[RunningStack], bool]
PROBES: dict[str, Probe] = {}


def probe(weakness_id: str) -> Callable[[Probe], Probe]:
    def register(fn: Probe) -> Probe:
        PROBES[weakness_id] = fn
        return fn

    return register


# -- helpers -------------------------------------------------------------------------------


def _resolver(stack: RunningStack) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    address = stack.target.dns.resolver_address
    assert address is not None
    res.nameservers, res.port = [address[0]], address[1]
    return res


def _txt(stack: RunningStack, name: str) -> list[str]:
    answer = _resolver(stack).resolve(name, "TXT")
    return [b"".join(r.strings).decode() for r in answer]


def _legacy_context(ciphers: str, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # anonymous suites have no certificate to verify
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 is deprecated: the point
        ctx.minimum_version = version
        ctx.maximum_version = version
    ctx.set_ciphers(ciphers)
    return ctx


@contextmanager
def _tls(stack: RunningStack, role: str, ctx: ssl.SSLContext) -> Iterator[ssl.SSLSocket]:
    """A TLS session with ``ctx`` on the endpoint of ``role`` (STARTTLS where it has one)."""
    port = stack.target.endpoints[role].port
    host = stack.host
    if role in ("smtps", "imaps", "pop3s"):
        with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
            yield tls
    elif role in ("smtp", "submission"):
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            smtp.starttls(context=ctx)
            assert isinstance(smtp.sock, ssl.SSLSocket)
            yield smtp.sock
    elif role == "imap":
        with imaplib.IMAP4(host, port, timeout=5) as imap:
            imap.starttls(ssl_context=ctx)
            assert isinstance(imap.sock, ssl.SSLSocket)
            yield imap.sock
    else:
        pop = poplib.POP3(host, port, timeout=5)
        try:
            pop.stls(context=ctx)
            assert isinstance(pop.sock, ssl.SSLSocket)
            yield pop.sock
        finally:
            pop.close()


def _handshake(stack: RunningStack, role: str, ctx: ssl.SSLContext) -> bool:
    """Whether a TLS session with ``ctx`` comes up on the endpoint of ``role``."""
    try:
        with _tls(stack, role, ctx) as tls:
            return tls.version() is not None
    except ConnectionRefusedError:
        raise  # the service is down: no verdict either way
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto):
        return False  # handshake refused (ssl.SSLError), or the server hung up on it


def _leaf(stack: RunningStack, role: str) -> x509.Certificate:
    """The certificate the endpoint of ``role`` presents, taken without verifying it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with _tls(stack, role, ctx) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der, f"{role}: no certificate presented"
    return x509.load_der_x509_certificate(der)


def _leaves(stack: RunningStack, weakness_id: str) -> dict[str, x509.Certificate]:
    return {role: _leaf(stack, role) for role in _tls_roles(weakness_id)}


def _tls_roles(weakness_id: str) -> tuple[str, ...]:
    return WEAKNESSES[weakness_id].roles


# -- one probe per weakness ----------------------------------------------------------------


@probe("tls-legacy-versions")
def tls_legacy_versions(stack: RunningStack) -> bool:
    accepted = {
        (role, version.name): _handshake(stack, role, _legacy_context("ALL:@SECLEVEL=0", version))
        for role in _tls_roles("tls-legacy-versions")
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    }
    # present only if every listed endpoint takes both; absent only if none takes either
    assert len(set(accepted.values())) == 1, accepted
    return all(accepted.values())


@probe("tls-anonymous-ciphers")
def tls_anonymous_ciphers(stack: RunningStack) -> bool:
    accepted = {
        role: _handshake(stack, role, _legacy_context("aNULL:@SECLEVEL=0", ssl.TLSVersion.TLSv1_2))
        for role in _tls_roles("tls-anonymous-ciphers")
    }
    assert len(set(accepted.values())) == 1, accepted
    return all(accepted.values())


@probe("cert-names-missing")
def cert_names_missing(stack: RunningStack) -> bool:
    lacking = {}
    for role, cert in _leaves(stack, "cert-names-missing").items():
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        host = stack.target.endpoints[role].host
        lacking[role] = host not in san.get_values_for_type(x509.DNSName)
    assert len(set(lacking.values())) == 1, lacking
    return all(lacking.values())


@probe("cert-rsa-1024")
def cert_rsa_1024(stack: RunningStack) -> bool:
    bits = {}
    for role, cert in _leaves(stack, "cert-rsa-1024").items():
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey), (role, key)
        bits[role] = key.key_size
    assert set(bits.values()) <= {1024, 2048} and len(set(bits.values())) == 1, bits
    return bits[next(iter(bits))] == 1024


def _picked(stack: RunningStack, role: str, ciphers: str) -> str:
    """The TLS 1.2 suite the endpoint of ``role`` picks from ``ciphers``, offered in order."""
    with _tls(stack, role, _legacy_context(ciphers, ssl.TLSVersion.TLSv1_2)) as tls:
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


@probe("tls-client-cipher-order")
def tls_client_cipher_order(stack: RunningStack) -> bool:
    both = ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384")
    follows = {
        role: [_picked(stack, role, ":".join(order)) for order in (both, both[::-1])]
        == [both[0], both[1]]
        for role in _tls_roles("tls-client-cipher-order")
    }
    assert len(set(follows.values())) == 1, follows
    return all(follows.values())


@probe("tls-dhe-1024")
def tls_dhe_1024(stack: RunningStack) -> bool:
    dhe = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
    small = {}
    for role in _tls_roles("tls-dhe-1024"):
        # OpenSSL's security level 2 refuses a DH group under 2048 bits, level 0 takes any
        anything = _handshake(
            stack, role, _legacy_context(f"{dhe}:@SECLEVEL=0", ssl.TLSVersion.TLSv1_2)
        )
        strong = _handshake(
            stack, role, _legacy_context(f"{dhe}:@SECLEVEL=2", ssl.TLSVersion.TLSv1_2)
        )
        small[role] = anything and not strong
    assert len(set(small.values())) == 1, small
    return all(small.values())


@probe("cert-revocation-missing")
def cert_revocation_missing(stack: RunningStack) -> bool:
    lacking = {
        role: revocation_urls(cert) == ([], [])
        for role, cert in _leaves(stack, "cert-revocation-missing").items()
    }
    assert len(set(lacking.values())) == 1, lacking
    return all(lacking.values())


@probe("dkim-weak-key")
def dkim_weak_key(stack: RunningStack) -> bool:
    (selector,) = stack.target.dns.dkim_selectors
    (record,) = _txt(stack, f"{selector}._domainkey.{stack.target.domain}")
    tags = dict(t.strip().split("=", 1) for t in record.split(";") if t.strip())
    key = load_der_public_key(base64.b64decode(tags["p"]))
    assert isinstance(key, rsa.RSAPublicKey)
    return key.key_size < 2048


@probe("spf-softfail")
def spf_softfail(stack: RunningStack) -> bool:
    (spf,) = [t for t in _txt(stack, stack.target.domain) if t.startswith("v=spf1")]
    return spf.split()[-1] == "~all"


@probe("dmarc-none")
def dmarc_none(stack: RunningStack) -> bool:
    (record,) = _txt(stack, f"_dmarc.{stack.target.domain}")
    tags = dict(t.strip().split("=", 1) for t in record.split(";") if t.strip())
    return tags["p"] == "none"


@probe("dns-caa-other-ca")
def dns_caa_other_ca(stack: RunningStack) -> bool:
    """Which CAs the domain's CAA lets issue: the lab CA (the target file names it), or
    another one."""
    answer = _resolver(stack).resolve(stack.target.domain, "CAA")
    issuers = {r.value.decode().split(";")[0].strip() for r in answer if r.tag == b"issue"}
    lab = set(stack.target.expect.caa_issuers)
    assert len(lab) == 1 and len(issuers) == 1, (lab, issuers)
    return issuers != lab


def _rcpt(stack: RunningStack, rcpt: str, source: str = "127.0.0.1") -> int:
    port = stack.target.endpoints["smtp"].port
    with smtplib.SMTP(stack.host, port, timeout=10, source_address=(source, 0)) as smtp:
        smtp.ehlo("client.example.org")
        smtp.mail("sender@example.org")
        code, _ = smtp.rcpt(rcpt)
        smtp.rset()
        return code


@probe("dnsbl-unchecked")
def dnsbl_unchecked(stack: RunningStack) -> bool:
    # 127.0.0.2 is listed in the stack's DNSBL zone (2.0.0.127.dnsbl.test A 127.0.0.2)
    code = _rcpt(stack, stack.target.account(0).address, source="127.0.0.2")
    assert code in (250, 554), code
    return code == 250


@probe("gtube-accepted")
def gtube_accepted(stack: RunningStack) -> bool:
    port = stack.target.endpoints["smtp"].port
    rcpt = stack.target.account(1).address
    message = f"From: sender@example.org\r\nTo: {rcpt}\r\nSubject: gtube\r\n\r\n{GTUBE}\r\n"
    with smtplib.SMTP(stack.host, port, timeout=30) as smtp:
        try:
            smtp.sendmail("sender@example.org", [rcpt], message)
        except smtplib.SMTPDataError as exc:
            assert exc.smtp_code == 550, exc
            return False
    return True


@probe("auth-before-starttls")
def auth_before_starttls(stack: RunningStack) -> bool:
    port = stack.target.endpoints["submission"].port
    with smtplib.SMTP(stack.host, port, timeout=10) as smtp:
        smtp.ehlo("client.example.org")
        if not smtp.has_extn("auth"):
            return False
        # offered: it must also work, in clear text (RFC 4954 §4 forbids exactly this)
        account = stack.target.account(0)
        code, _ = smtp.login(account.local, account.password)
        return code == 235


@probe("vrfy-enabled")
def vrfy_enabled(stack: RunningStack) -> bool:
    port = stack.target.endpoints["smtp"].port
    with smtplib.SMTP(stack.host, port, timeout=10) as smtp:
        smtp.ehlo("client.example.org")
        known, _ = smtp.verify(stack.target.account(0).address)
        unknown, _ = smtp.verify(f"nobody-here@{stack.target.domain}")
    assert known in (250, 252, 502), known
    # enumeration: a known and an unknown address get different answers
    return known in (250, 252) and unknown != known


@probe("relay-open-network")
def relay_open_network(stack: RunningStack) -> bool:
    code = _rcpt(stack, f"victim@{stack.target.expect.relay_test_domain}")
    assert code in (250, 454, 554), code
    return code == 250


@probe("smtp-smuggling-bare-lf")
def smtp_smuggling_bare_lf(stack: RunningStack) -> bool:
    port = stack.target.endpoints["smtp"].port
    rcpt = stack.target.account(2).address
    with socket.create_connection((stack.host, port), timeout=5) as sock:
        buffer = b""

        def reply() -> bytes:
            """The last line of the next (possibly multi-line) reply."""
            nonlocal buffer
            while True:
                while b"\r\n" not in buffer:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError(f"closed; had {buffer!r}")
                    buffer += chunk
                line, buffer = buffer.split(b"\r\n", 1)
                if line[3:4] != b"-":
                    return line

        reply()
        for command in (b"EHLO client.example.org", b"MAIL FROM:<sender@example.org>"):
            sock.sendall(command + b"\r\n")
            reply()
        sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
        assert reply().startswith(b"250")
        sock.sendall(b"DATA\r\n")
        assert reply().startswith(b"354")
        # RFC 5321 §4.1.1.4: only <CRLF>.<CRLF> ends the data; here the dot sits between bare LFs
        sock.sendall(b"Subject: smuggling\r\n\r\nbody\n.\n")
        sock.settimeout(2)
        try:
            return reply().startswith(b"250")
        except TimeoutError:
            pass  # still in DATA: the bare-LF dot was content, not the end
        sock.settimeout(5)
        sock.sendall(b"\r\n.\r\n")
        answer = reply()
        # and the message that carried a bare LF is refused, not delivered
        assert answer.startswith(b"5"), answer
        return False


@probe("smtp-long-address-accepted")
def smtp_long_address_accepted(stack: RunningStack) -> bool:
    port = stack.target.endpoints["smtp"].port
    address = f"{'a' * 1024}@example.org"  # seed S18: 1,000+ characters is an attack
    with smtplib.SMTP(stack.host, port, timeout=10) as smtp:
        smtp.ehlo("client.example.org")
        code, _ = smtp.mail(address)
    assert code in (250, 501), code
    return code == 250


class _SourcedIMAPS(imaplib.IMAP4_SSL):
    """IMAPS from a chosen loopback source address (imaplib has no parameter for it)."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self._source = source
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        super().__init__(host, port, ssl_context=ctx, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def _imaps_login(stack: RunningStack, source: str, password: str) -> bool:
    imap = _SourcedIMAPS(stack.host, stack.target.endpoints["imaps"].port, source)
    try:
        imap.login(stack.target.account(0).local, password)
        imap.logout()
        return True
    except imaplib.IMAP4.error:
        imap.shutdown()
        return False


@probe("login-lockout-missing")
def login_lockout_missing(stack: RunningStack) -> bool:
    # not expect.lockout_source (.66): that one is left for the conformance check
    source = stack.host.rsplit(".", 1)[0] + ".67"
    after = stack.target.expect.lockout_after
    assert after == 3
    assert _imaps_login(stack, source, stack.password), f"{source} locked out before the probe"
    # the failures at once: Dovecot delays each failing address's logins by seconds
    with ThreadPoolExecutor(max_workers=after) as pool:
        failed = list(pool.map(lambda _: _imaps_login(stack, source, "wrong"), range(after)))
    assert not any(failed)
    return _imaps_login(stack, source, stack.password)


def _delivered_head(stack: RunningStack, headers: str, body: str) -> str:
    """Send a message to account 1 through the inbound MX (milters and all) and return its
    header block as delivered, read over IMAPS; the message is then deleted."""
    account = stack.target.account(1)
    token = base64.b32encode(ssl.RAND_bytes(10)).decode().lower()
    message = (
        f"{headers}From: sender@example.org\r\nTo: {account.address}\r\n"
        f"Subject: weakness probe {token}\r\n\r\n{body}\r\n"
    )
    with smtplib.SMTP(stack.host, stack.target.endpoints["smtp"].port, timeout=30) as smtp:
        smtp.sendmail("sender@example.org", [account.address], message)
    imap = _SourcedIMAPS(stack.host, stack.target.endpoints["imaps"].port, stack.host)
    try:
        imap.login(account.local, stack.password)
        imap.select("INBOX")
        for _ in range(100):  # delivery through the milters takes a moment
            _, found = imap.search(None, "SUBJECT", f'"{token}"')
            if found[0]:
                break
            time.sleep(0.1)
        numbers = found[0].split()
        assert numbers, "the probe message never arrived"
        _, data = imap.fetch(numbers[0], "(BODY.PEEK[HEADER])")
        head = b"".join(part[1] for part in data if isinstance(part, tuple)).decode()
        imap.store(numbers[0], "+FLAGS", "\\Deleted")
        imap.expunge()
    finally:
        imap.logout()
    return re.sub(r"\r\n[ \t]+", " ", head)  # unfolded


def _header_lines(head: str, name: str) -> list[str]:
    return [line for line in head.splitlines() if line.lower().startswith(name.lower() + ":")]


@probe("dkim-unverified")
def dkim_unverified(stack: RunningStack) -> bool:
    """Inbound mail carrying a DKIM signature (of the stack's domain and selector, with a
    wrong hash): a verifying OpenDKIM records dkim=fail in Authentication-Results, a
    signing-only one records nothing."""
    selector = stack.target.dns.dkim_selectors[0]
    signature = (
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={stack.target.domain};\r\n"
        f" s={selector}; h=from:to:subject; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;\r\n"
        " b=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    )
    head = _delivered_head(stack, signature, "is this signature verified?")
    return not [r for r in _header_lines(head, "Authentication-Results") if "dkim=" in r.lower()]


@probe("spam-false-positive")
def spam_false_positive(stack: RunningStack) -> bool:
    """An ordinary short text message: is it delivered flagged as spam?"""
    head = _delivered_head(stack, "", "Hello, the minutes of Tuesday's meeting are below.")
    flags = _header_lines(head, "X-Spam-Flag")
    return any("yes" in line.lower() for line in flags)


# -- the tests -----------------------------------------------------------------------------


def test_every_listed_weakness_has_a_probe() -> None:
    assert set(PROBES) == set(WEAKNESSES)


def test_weaknesses_file_is_complete() -> None:
    for w in WEAKNESSES.values():
        assert w.description and w.seed.startswith("S") and w.roles and w.controls, w


@pytest.mark.parametrize("weakness_id", sorted(WEAKNESSES))
def test_weak_stack_has_weakness(weak_stack: RunningStack, weakness_id: str) -> None:
    assert PROBES[weakness_id](weak_stack), WEAKNESSES[weakness_id].description


@pytest.mark.parametrize("weakness_id", sorted(WEAKNESSES))
def test_good_stack_does_not(good_stack: RunningStack, weakness_id: str) -> None:
    assert not PROBES[weakness_id](good_stack), WEAKNESSES[weakness_id].description


# two weaknesses of different daemons (TLS of Postfix and Dovecot; the spam milter)
ONLY = ("gtube-accepted", "tls-legacy-versions")


@pytest.fixture(scope="module")
def partly_weak_stack() -> Iterator[RunningStack]:
    yield from bring_up("weak", *ONLY)


def test_weaknesses_switch_on_one_at_a_time(partly_weak_stack: RunningStack) -> None:
    """`stack up --weakness ID` gives a target with exactly that weakness, so a conformance
    check can be proved against the one weakness it names."""
    present = {wid for wid, found in PROBES.items() if found(partly_weak_stack)}
    assert present == set(ONLY)
