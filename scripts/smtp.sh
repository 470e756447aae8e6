#!/usr/bin/env bash
# Installs what the SMTP delivery tests need, when it is missing: Postfix's smtp-sink (Debian
# package `postfix`), and python3 + openssl for the TLS relay test (smtp-sink has no TLS).
# The tests start their own server processes on loopback ports; the postfix daemon is never
# configured nor started.
set -euo pipefail

smtp_sink() {
  command -v smtp-sink 2>/dev/null || { [ -x /usr/sbin/smtp-sink ] && echo /usr/sbin/smtp-sink; } || true
}

missing=()
[ -n "$(smtp_sink)" ] || missing+=(postfix)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "smtp.sh: ${missing[*]} missing and cannot be installed here (needs root and apt-get); the SMTP tests will say so" >&2
  exit 0
fi
echo "smtp.sh: installing ${missing[*]} (for the SMTP delivery tests)" >&2
export DEBIAN_FRONTEND=noninteractive
# No configuration: the package must not set up (nor start) a mail system.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where an init system runs, the maintainer scripts may have started the daemon; the tests
# need only smtp-sink.
if command -v postfix >/dev/null 2>&1 && postfix status >/dev/null 2>&1; then
  postfix stop >/dev/null 2>&1 || true
fi
[ -n "$(smtp_sink)" ] || { echo "smtp.sh: postfix installed but smtp-sink not found" >&2; exit 1; }
