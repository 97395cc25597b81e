"""Where a stack lives: its directories, loopback addresses and ports.

Usage::

    layout = Layout.for_profile(Path("/tmp/stack"), "weak")
    layout.net.mx1, layout.ports.smtp      # "127.0.2.1", 2525

Each profile has its own loopback block so the good and the weak stack can run side by
side: 127.0.1.x for good, 127.0.2.x for weak. Knot answers on port 53 of ``.53`` in that
block because Postfix's smtpd can only be pointed at a resolver through a resolv.conf,
which takes no port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from maildrill.errors import ConfigError
from maildrill.stack.weaknesses import weakness_ids
from maildrill.tls.testpki import service_names

__all__ = [
    "DNSBL_ZONE",
    "DOMAIN",
    "PROFILES",
    "Dirs",
    "Layout",
    "Net",
    "Ports",
    "Profile",
    "default_block",
]

Profile = Literal["good", "weak"]
PROFILES: tuple[Profile, ...] = ("good", "weak")

DOMAIN = "example.test"  # RFC 2606 reserved TLD
DNSBL_ZONE = "dnsbl.test"
SELECTOR = "mail"
USERS = 20
MAX_MESSAGE_SIZE = 10_240_000
LOCKOUT_AFTER = 3  # seed S17: fail2ban maxretry = 3

_BLOCK: dict[Profile, str] = {"good": "127.0.1", "weak": "127.0.2"}

# Mozilla "intermediate" TLS 1.2 suites (ECDHE + AEAD); TLS 1.3 suites are OpenSSL's own
STRONG_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
# TLS 1.0/1.1 cannot use AEAD suites; OpenSSL 3 needs security level 0 for them
LEGACY_CIPHERS = "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA"
ANON_CIPHERS = "aNULL:!eNULL"
# finite-field DHE (the group comes from the DH parameter file, dh_param_file)
DHE_CIPHERS = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"


def default_block(profile: Profile) -> str:
    return _BLOCK[profile]


def _check_block(net: str) -> str:
    parts = net.split(".")
    if (
        len(parts) != 3
        or parts[:2] != ["127", "0"]
        or not parts[2].isdigit()
        or not 1 <= int(parts[2]) <= 254
    ):
        raise ConfigError(f"--net {net}: expected a loopback block 127.0.N with N in 1..254")
    return net


@dataclass(frozen=True)
class Net:
    mx1: str  # every service of the stack listens here
    mx2: str  # the backup MX (same Postfix, inbound role only)
    dns: str  # Knot, port 53


@dataclass(frozen=True)
class Ports:
    smtp: int = 2525  # inbound MX (port 25 role), all milters
    smtp_raw: int = 2526  # inbound without milters, for raw-throughput load runs
    submission: int = 2587
    smtps: int = 2465
    imap: int = 2143
    imaps: int = 2993
    pop3: int = 2110
    pop3s: int = 2995
    lmtp: int = 2424
    opendkim: int = 2891
    spamass: int = 2892
    spamd: int = 2783
    spf_policy: int = 2893  # Postfix policy delegation: SPF (maildrill.stack.spf_policy)
    lockout_policy: int = 2894  # Dovecot auth policy: S17 lockout (stack.lockout_policy)
    dmarc: int = 2895  # DMARC milter (maildrill.stack.dmarc_milter)
    webmail: int = 2443  # nginx (TLS) in front of Roundcube (seed S2)
    php_fpm: int = 2896  # PHP-FPM running Roundcube, behind nginx
    dns: int = 53


@dataclass(frozen=True)
class Dirs:
    """One directory per daemon under the stack's root."""

    root: Path

    @property
    def postfix(self) -> Path:  # main.cf, master.cf, maps, maillog (root's)
        return self.root / "postfix"

    @property
    def queue(self) -> Path:  # queue_directory: outside postfix/, whose files must be root's
        return self.root / "postfix-queue"

    @property
    def postfix_data(self) -> Path:  # data_directory, owned by postfix
        return self.root / "postfix-data"

    @property
    def dovecot(self) -> Path:
        return self.root / "dovecot"

    @property
    def mail(self) -> Path:  # Maildirs, owned by nobody
        return self.root / "mail"

    @property
    def knot(self) -> Path:
        return self.root / "knot"

    @property
    def opendkim(self) -> Path:
        return self.root / "opendkim"

    @property
    def spamassassin(self) -> Path:
        return self.root / "spamassassin"

    @property
    def webmail(self) -> Path:  # nginx, PHP-FPM and Roundcube: config/, db/, temp/, tmp/
        return self.root / "webmail"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


@dataclass(frozen=True)
class Layout:
    root: Path
    profile: Profile
    weak: frozenset[str]
    net: Net
    ports: Ports = field(default_factory=Ports)

    @classmethod
    def for_profile(
        cls,
        root: Path,
        profile: Profile,
        only: frozenset[str] | None = None,
        net: str | None = None,
    ) -> Layout:
        """``only`` narrows the weak profile to those weaknesses (to prove one check);
        ``net`` ("127.0.N") moves the stack to another loopback block."""
        block = _BLOCK[profile] if net is None else _check_block(net)
        weak = frozenset() if profile == "good" else weakness_ids()
        if only is not None:
            unknown = sorted(only - weakness_ids())
            if profile != "weak" or unknown:
                raise ConfigError(
                    f"--weakness {' '.join(unknown) or ' '.join(sorted(only))}: "
                    + (
                        f"unknown (expected one of: {', '.join(sorted(weakness_ids()))})"
                        if unknown
                        else "only with --profile weak"
                    )
                )
            weak = only
        return cls(
            root=root.absolute(),
            profile=profile,
            weak=weak,
            net=Net(mx1=f"{block}.1", mx2=f"{block}.2", dns=f"{block}.53"),
        )

    @property
    def dirs(self) -> Dirs:
        return Dirs(self.root)

    @property
    def cipherlist(self) -> str:
        suites = [STRONG_CIPHERS]
        if "tls-legacy-versions" in self.weak:
            suites.append(LEGACY_CIPHERS)
        if "tls-anonymous-ciphers" in self.weak:
            suites.append(ANON_CIPHERS)
        if "tls-dhe-1024" in self.weak:
            suites.append(DHE_CIPHERS)
        if len(suites) > 1:
            suites.append("@SECLEVEL=0")
        elif "cert-rsa-1024" in self.weak:
            # Debian's OpenSSL 3 runs at security level 2, where a daemon cannot even load a
            # 1024-bit key; level 1 allows it and changes nothing else these suites use
            suites.append("@SECLEVEL=1")
        return ":".join(suites)

    @property
    def mail_cert_names(self) -> list[str]:
        """The SAN of the mail services' certificate (names[0] is its CN)."""
        if "cert-names-missing" in self.weak:
            return [f"oldmail.{DOMAIN}"]  # a host the mail services no longer go by
        return service_names(DOMAIN)

    @property
    def mail_cert_revocation(self) -> bool:
        """Whether the mail services' leaf names an OCSP responder and a CRL."""
        return "cert-revocation-missing" not in self.weak

    @property
    def dh_param_file(self) -> Path:
        """The DH parameters Postfix and Dovecot load: the 1024-bit RFC 2409 Oakley group 2
        when weak, else RFC 7919 ffdhe2048 (only used if a DHE suite is ever offered)."""
        return self.dirs.pki / ("dh1024.pem" if "tls-dhe-1024" in self.weak else "dh.pem")

    @property
    def mail_cert_bits(self) -> int:
        return 1024 if "cert-rsa-1024" in self.weak else 2048

    @property
    def dkim_bits(self) -> int:
        return 1024 if "dkim-weak-key" in self.weak else 2048

    @property
    def spf(self) -> str:
        qualifier = "~all" if "spf-softfail" in self.weak else "-all"
        return f"v=spf1 ip4:{self.net.mx1} ip4:{self.net.mx2} mx {qualifier}"

    @property
    def dmarc(self) -> str:
        policy = "none" if "dmarc-none" in self.weak else "quarantine"
        return f"v=DMARC1; p={policy}; pct=100; rua=mailto:postmaster@{DOMAIN}"

    @property
    def lockout_source(self) -> str:
        """The address the conformance lockout check may burn (the stack's own tests use .67)."""
        return self.net.mx1.rsplit(".", 1)[0] + ".66"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def target_file(self) -> Path:
        return self.root / "target.toml"

    @property
    def raw_target_file(self) -> Path:
        return self.root / "target-raw.toml"

    @property
    def password_file(self) -> Path:
        return self.root / "passwords"
