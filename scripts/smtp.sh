#!/usr/bin/env bash
# Installs Postfix's smtp-sink (Debian package `postfix`) for the SMTP delivery tests, when it
# is missing. Only the binary is needed: the tests start their own smtp-sink processes on
# loopback ports; the postfix daemon is never configured nor started.
set -euo pipefail

smtp_sink() {
  command -v smtp-sink 2>/dev/null || { [ -x /usr/sbin/smtp-sink ] && echo /usr/sbin/smtp-sink; } || true
}

if [ -n "$(smtp_sink)" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "smtp.sh: smtp-sink is missing and cannot be installed here (needs root and apt-get); the SMTP tests will say so" >&2
  exit 0
fi
echo "smtp.sh: installing postfix (for smtp-sink, used by the SMTP delivery tests)" >&2
export DEBIAN_FRONTEND=noninteractive
# No configuration: the package must not set up (nor start) a mail system.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends postfix >/dev/null
# The package's maintainer scripts may start the daemon where an init system runs; the tests
# need only smtp-sink, so stop it if it did.
if command -v postfix >/dev/null 2>&1 && postfix status >/dev/null 2>&1; then
  postfix stop >/dev/null 2>&1 || true
fi
[ -n "$(smtp_sink)" ] || { echo "smtp.sh: postfix installed but smtp-sink not found" >&2; exit 1; }
