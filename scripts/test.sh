#!/usr/bin/env bash
# The test command of the README: installs what the tests need when it is missing, then runs
# the whole test suite. Safe to run again; installs nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The report test renders report.html in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing chromium (needed by the report rendering test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "test.sh: chromium is missing and cannot be installed here; the report rendering test will say so" >&2
  fi
fi

# The webhook executor tests run a Python 3 HTTP server.
bash scripts/webhook-test-deps.sh

# The PostgreSQL store tests run against a throwaway local server (loopback and a unix socket
# under target/pg-test/), stopped on every exit. Under CI they fail without it.
if bash scripts/pg.sh start >/dev/null; then
  trap 'bash scripts/pg.sh stop' EXIT
  LEAKAUDIT_TEST_PG_URL="$(cat target/pg-test/url)"
  export LEAKAUDIT_TEST_PG_URL
else
  echo "test.sh: no PostgreSQL test server; the PostgreSQL store tests will say so" >&2
fi

# The SMTP delivery tests start Postfix's smtp-sink on loopback ports (never the postfix daemon).
bash scripts/smtp.sh

cargo test --workspace --locked --features leakaudit/crash-points
