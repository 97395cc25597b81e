"""The stack's webmail (seed S2): Roundcube from Debian's packages on PHP-FPM, behind nginx.

Rendered by :func:`maildrill.stack.render.render` into ``DIR/webmail``::

    render_webmail(layout, put)   # put(template, path) renders one template

Nothing in ``/etc`` is edited: PHP-FPM passes ``ROUNDCUBE_CONFIG_DIR`` to Roundcube
(read by ``/usr/share/roundcube/program/include/iniset.php``), which then takes its
``config.inc.php`` from ``DIR/webmail/config``; Debian's ``defaults.inc.php`` and
``mimetypes.php`` are linked beside it. Roundcube keeps its sessions and users in a SQLite
file of its own, created here from the schema the package ships, with every test account
already known (a user row and its identity), as on a webmail whose users have logged in
before: Roundcube 1.6 creates that row on a first login, and two concurrent first logins
of one account race for it (UNIQUE constraint; one gets 401), which is not what a load run
of the stack means to measure.
"""

from __future__ import annotations

import os
import pwd
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from maildrill.stack.layout import DOMAIN, Layout

__all__ = ["ROUNDCUBE_SCHEMA", "WEB_USER", "render_webmail"]

ROUNDCUBE_SCHEMA = Path("/usr/share/roundcube/SQL/sqlite.initial.sql")
DEBIAN_CONFIG = Path("/etc/roundcube")
WEB_USER = "www-data"  # PHP-FPM's workers and nginx's run as this user


def _own(path: Path, mode: int) -> None:
    entry = pwd.getpwnam(WEB_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, mode)


def render_webmail(
    layout: Layout, put: Callable[[str, Path, dict[str, str]], None], users: list[str]
) -> None:
    d = layout.dirs
    web = d.webmail
    config, db, temp = web / "config", web / "db", web / "temp"
    for sub in (config, db, temp, web / "tmp", d.logs / "roundcube"):
        sub.mkdir(parents=True, exist_ok=True)
    for sub in (db, temp, web / "tmp", d.logs / "roundcube"):
        _own(sub, 0o750)
    put("nginx.conf.j2", web / "nginx.conf", {})
    put("php-fpm.conf.j2", web / "php-fpm.conf", {})
    settings = config / "config.inc.php"
    # des_key encrypts the IMAP password kept in each session: per stack, never shared
    put("roundcube.config.inc.php.j2", settings, {"des_key": secrets.token_urlsafe(18)[:24]})
    os.chown(settings, 0, pwd.getpwnam(WEB_USER).pw_gid)
    os.chmod(settings, 0o640)
    for name in ("defaults.inc.php", "mimetypes.php"):
        (config / name).symlink_to(DEBIAN_CONFIG / name)
    database = db / "roundcube.db"
    with closing(sqlite3.connect(database)) as conn:
        conn.executescript(ROUNDCUBE_SCHEMA.read_text(encoding="utf-8"))
        # WAL: a load run's concurrent sessions read while one writes, instead of failing
        # with "database is locked"
        conn.execute("PRAGMA journal_mode=WAL")
        for user in users:
            # mail_host is the host of imap_host, as Roundcube stores it
            row = conn.execute(
                "INSERT INTO users (username, mail_host, created, language, preferences) "
                "VALUES (?, ?, datetime('now'), 'en_US', 'a:0:{}')",
                (user, layout.net.mx1),
            )
            conn.execute(
                "INSERT INTO identities (user_id, changed, standard, name, email) "
                "VALUES (?, datetime('now'), 1, ?, ?)",
                (row.lastrowid, user, f"{user}@{DOMAIN}"),
            )
        conn.commit()
    _own(database, 0o640)
