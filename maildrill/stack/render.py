"""Render every daemon's configuration of a stack into its directory.

Usage::

    render(layout)      # writes postfix/, dovecot/, knot/, opendkim/, spamassassin/, pki/,
                        # webmail/, passwords, target.toml and target-raw.toml under layout.root

Templates live in ``maildrill/stack/templates``; each weakness of the weak profile is one
``{% if "<id>" in weak %}`` there, so a reader sees exactly what the weak stack changes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
import shutil
from pathlib import Path
from typing import Any

import jinja2

from maildrill.stack.layout import (
    DNSBL_ZONE,
    DOMAIN,
    LOCKOUT_AFTER,
    MAX_MESSAGE_SIZE,
    SELECTOR,
    STRONG_CIPHERS,
    USERS,
    Layout,
)
from maildrill.stack.roundcube import render_webmail
from maildrill.tls.dhgroups import ffdhe, modp, parameters_pem
from maildrill.tls.testpki import caa_issuer, make_ca, make_dkim_key, service_names

__all__ = ["render", "user_name"]

# weaknesses.toml dns-caa-other-ca: the CA the weak zone's CAA names instead of the lab's
OTHER_CA = "letsencrypt.org"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("maildrill.stack", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # config files, not HTML
)


def user_name(n: int) -> str:
    return f"user{n:04d}"


def _ssha512(password: str) -> str:
    """Dovecot's {SSHA512} scheme: fast to check, so load runs measure the server, not hashing."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def _txt_chunks(value: str) -> str:
    """A TXT value split into <=255-octet strings (RFC 1035 §3.3.14), quoted for a zone."""
    return " ".join(f'"{value[i : i + 250]}"' for i in range(0, len(value), 250))


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def render(layout: Layout) -> None:
    d = layout.dirs
    for sub in (d.postfix, d.dovecot, d.knot, d.opendkim, d.spamassassin, d.mail, d.logs):
        sub.mkdir(parents=True, exist_ok=True)
    # tools such as git should leave a stack directory alone
    (layout.root / ".gitignore").write_text("*\n")
    ca = make_ca(d.pki, f"maildrill stack CA {DOMAIN}")
    # the webmail's certificate is the same in both profiles; the mail services' carries
    # the certificate weaknesses (weaknesses.toml: cert-*)
    pki = ca.issue(service_names(DOMAIN))
    mail_pki = ca.issue(
        layout.mail_cert_names,
        stem="mail",
        key_bits=layout.mail_cert_bits,
        revocation=layout.mail_cert_revocation,
    )
    weak_dh = "tls-dhe-1024" in layout.weak
    layout.dh_param_file.write_bytes(parameters_pem(modp(1024) if weak_dh else ffdhe(2048)))
    dkim_txt = make_dkim_key(d.opendkim / f"{SELECTOR}.private", layout.dkim_bits).txt
    password = secrets.token_urlsafe(12)
    context: dict[str, Any] = {
        "profile": layout.profile,
        "weak": layout.weak,
        "net": layout.net,
        "ports": layout.ports,
        "dirs": d,
        "pki": pki,
        "mail_pki": mail_pki,
        "mail_cert_names": layout.mail_cert_names,
        "mail_cert_bits": layout.mail_cert_bits,
        "dh_param_file": layout.dh_param_file,
        "domain": DOMAIN,
        "dnsbl_zone": DNSBL_ZONE,
        "selector": SELECTOR,
        "cipherlist": layout.cipherlist,
        "strong_ciphers": STRONG_CIPHERS,
        "max_message_size": MAX_MESSAGE_SIZE,
        "spf": layout.spf,
        "dmarc": layout.dmarc,
        "dkim_txt_chunks": _txt_chunks(dkim_txt),
        "policy_nonce": secrets.token_hex(16),
        "caa_issuer": caa_issuer(DOMAIN),
        "other_ca": OTHER_CA,
    }

    def put(template: str, path: Path, extra: dict[str, str] | None = None) -> None:
        text = _ENV.get_template(template).render({**context, **(extra or {})})
        path.write_text(text, encoding="utf-8")

    # Knot
    for name in ("run", "db", "zones"):
        (d.knot / name).mkdir(exist_ok=True)
    put("knot.conf.j2", d.knot / "knot.conf")
    put("zone.j2", d.knot / "zones" / f"{DOMAIN}.zone")
    put("dnsbl.zone.j2", d.knot / "zones" / f"{DNSBL_ZONE}.zone")

    # Postfix: the queue directory is root's, data_directory postfix's; the chrooted
    # smtpd resolves through the queue directory's etc/resolv.conf (postfix-script warns
    # that it differs from /etc/resolv.conf: that is the point)
    (d.queue / "etc").mkdir(parents=True, exist_ok=True)
    (d.queue / "etc" / "resolv.conf").write_text(
        f"nameserver {layout.net.dns}\noptions timeout:2 attempts:2\n"
    )
    d.postfix_data.mkdir(exist_ok=True)
    _chown(d.postfix_data, "postfix")
    put("main.cf.j2", d.postfix / "main.cf")
    put("master.cf.j2", d.postfix / "master.cf")
    put("sender_access.j2", d.postfix / "sender_access")
    users = [user_name(n) for n in range(1, USERS + 1)]
    (d.postfix / "vmailbox").write_text(
        "".join(f"{u}@{DOMAIN} {u}/\n" for u in [*users, "postmaster"])
    )

    # Dovecot: passwd-file of the test users; mailboxes belong to nobody
    put("dovecot.conf.j2", d.dovecot / "dovecot.conf")
    lines = [f"{u}:{_ssha512(password)}::::::\n" for u in [*users, "postmaster"]]
    users_file = d.dovecot / "users"
    users_file.write_text("".join(lines))
    os.chmod(users_file, 0o640)
    os.chown(users_file, 0, pwd.getpwnam("dovecot").pw_gid)
    _chown(d.mail, "nobody")

    # OpenDKIM reads its verification keys from a file holding the same TXT as Knot
    put("opendkim.conf.j2", d.opendkim / "opendkim.conf")
    (d.opendkim / "dnsdata").write_text(
        f"{SELECTOR}._domainkey.{DOMAIN} {dkim_txt.replace(' ', '')}\n"
    )

    # SpamAssassin
    # --siteconfigpath replaces /etc/spamassassin, whose *.pre files load the plugins
    for pre in sorted(Path("/etc/spamassassin").glob("*.pre")):
        shutil.copy(pre, d.spamassassin / pre.name)
    put("local.cf.j2", d.spamassassin / "local.cf")

    # webmail (seed S2): nginx + PHP-FPM + Roundcube
    render_webmail(layout, put, users)

    fd = os.open(layout.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    _write_targets(layout)


def _target_toml(layout: Layout, name: str, smtp_port: int) -> str:
    p, host = layout.ports, DOMAIN
    return f"""\
# Target file of the maildrill reference stack ({layout.profile} profile).
# Written by `maildrill stack up`; names resolve through the stack's own Knot.
name = "{name}"
domain = "{DOMAIN}"
policy = "seed"
ca_file = "pki/ca.pem"

[endpoints.smtp]
url = "smtp://mx1.{host}:{smtp_port}"

[endpoints.submission]
url = "submission://smtp.{host}:{p.submission}"
starttls_required = true

[endpoints.smtps]
url = "smtps://smtp.{host}:{p.smtps}"

[endpoints.imap]
url = "imap://imap.{host}:{p.imap}"
starttls_required = true

[endpoints.imaps]
url = "imaps://imap.{host}:{p.imaps}"

[endpoints.pop3]
url = "pop3://pop3.{host}:{p.pop3}"
starttls_required = true

[endpoints.pop3s]
url = "pop3s://pop3.{host}:{p.pop3s}"

[endpoints.webmail]
url = "https://webmail.{host}:{p.webmail}/"
flavour = "roundcube"

[dns]
resolver = "{layout.net.dns}:{p.dns}"
dkim_selectors = ["{SELECTOR}"]
dnsbl_zones = ["{DNSBL_ZONE}"]

[accounts]
pattern = "user{{n:04d}}"
first = 1
count = {USERS}
password_file = "passwords"

[safety]
allowed_networks = ["127.0.0.0/8"]
max_rate = 500.0

# what the seed's policy asks of this system; the weak profile breaks some of it
[expect]
spam_action = "reject"
max_message_size = {MAX_MESSAGE_SIZE}
mx_priorities = [10, 20]
lockout_after = {LOCKOUT_AFTER}
lockout_source = "{layout.lockout_source}"
# the lab CA's name in CAA records (the weak profile's CAA may name another CA)
caa_issuers = ["{caa_issuer(DOMAIN)}"]
"""


def _write_targets(layout: Layout) -> None:
    name = f"reference-{layout.profile}"
    layout.target_file.write_text(_target_toml(layout, name, layout.ports.smtp))
    layout.raw_target_file.write_text(
        _target_toml(layout, f"{name}-raw", layout.ports.smtp_raw).replace(
            "# Written by", "# Its smtp endpoint is the inbound port without milters.\n# Written by"
        )
    )
