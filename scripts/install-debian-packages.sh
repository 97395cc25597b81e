#!/usr/bin/env bash
# Installs the Debian packages maildrill's tests need: the reference mail stack (Postfix,
# Dovecot, OpenDKIM, SpamAssassin, Knot, Roundcube webmail behind nginx + PHP-FPM) and
# Chromium for the report test.
# Safe to run again; needs root (CI runs as root). Starts no daemon: the stack scripts
# start every server from their own config directories.
set -euo pipefail

PACKAGES=(
  # reference stack (maildrill stack up)
  postfix dovecot-imapd dovecot-pop3d dovecot-lmtpd
  opendkim opendkim-tools spamassassin spamd spamass-milter
  knot knot-dnsutils
  # webmail (seed S2): Roundcube on PHP-FPM, nginx terminating TLS in front of it
  roundcube-core roundcube-sqlite3 php-fpm nginx
  # plain clients for the stack's own proofs and the benchmarks
  openssl swaks
  # the report test renders HTML in a real headless browser
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-debian-packages: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-debian-packages: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# postfix asks for a mailer type; the stack never uses the system instance
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# roundcube: no system database either; the stack gives Roundcube its own SQLite file
echo "roundcube-core roundcube/dbconfig-install boolean false" | debconf-set-selections
apt-get update -qq
# policy-rc.d 101 keeps the packages' own daemons from starting on install
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$created_policy" = 1 ] && rm -f "$policy"
echo "install-debian-packages: installed ${missing[*]}"
