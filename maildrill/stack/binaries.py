"""The Debian binaries the stack runs, and the package each comes from.

Usage::

    require_binaries()   # ConfigError naming the package and the install script
"""

from __future__ import annotations

import shutil
from pathlib import Path

from maildrill.errors import ConfigError

__all__ = ["BINARIES", "INSTALL_SCRIPT", "missing_binaries", "require_binaries"]

INSTALL_SCRIPT = "scripts/install-debian-packages.sh"

# binary -> Debian package providing it
BINARIES: dict[str, str] = {
    "/usr/sbin/postfix": "postfix",
    "/usr/lib/postfix/sbin/smtpd": "postfix",
    "/usr/sbin/dovecot": "dovecot-core",
    "/usr/lib/dovecot/imap": "dovecot-imapd",
    "/usr/lib/dovecot/pop3": "dovecot-pop3d",
    "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    "/usr/sbin/opendkim": "opendkim",
    "/usr/sbin/spamd": "spamd",
    "/usr/bin/spamc": "spamc",
    "/usr/sbin/spamass-milter": "spamass-milter",
    "/usr/sbin/knotd": "knot",
    # webmail (seed S2); Debian 12's PHP is 8.2, its module API directory 20220829
    "/usr/sbin/nginx": "nginx",
    "/usr/sbin/php-fpm8.2": "php-fpm",
    "/usr/share/roundcube/index.php": "roundcube-core",
    "/usr/lib/php/20220829/pdo_sqlite.so": "roundcube-sqlite3",
}


def missing_binaries() -> dict[str, str]:
    """Binaries not installed here, mapped to their package."""
    return {
        binary: package
        for binary, package in BINARIES.items()
        if not (Path(binary).exists() or shutil.which(Path(binary).name))
    }


def require_binaries() -> None:
    missing = missing_binaries()
    if missing:
        packages = sorted(set(missing.values()))
        first = next(iter(missing))
        raise ConfigError(
            f"{first} not found: install Debian package(s) {' '.join(packages)} "
            f"(sudo {INSTALL_SCRIPT})"
        )
