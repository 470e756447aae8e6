#!/usr/bin/env bash
# The webhook executor's integration tests start a real HTTP server process written in
# Python 3 (standard library only): install python3 when it is missing (as root, Debian).
set -euo pipefail
if ! command -v python3 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "webhook-test-deps.sh: installing python3 (needed by the webhook executor tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null
  else
    echo "webhook-test-deps.sh: python3 is missing and cannot be installed here; the webhook tests will say so" >&2
  fi
fi
