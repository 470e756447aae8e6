#!/usr/bin/env bash
# Affected-users memory benchmark (issue 9): one message with N visible addresses (default
# 20,000 and 1,000,000: N consumer addresses in Cc, two colleagues of one business in To),
# `leakaudit affected FILE --format csv -o OUT`, peak RSS from /usr/bin/time -v, and a check
# that every address is listed once with audience N (N consumer parties + the business,
# minus the address's own party). Target (issue 9): under 512 MiB at 1,000,000.
#
# Also the library alone (no CLI): crates/remediation/examples/affected_mem.rs.
#
# Usage: bench/affected.sh [N...]        (env: CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(20000 1000000)

cargo build --release -q -p leakaudit
BIN="$TARGET/release/leakaudit"
mkdir -p bench-data

gen() { # N FILE: one .eml, the Cc header folded one address per line
    awk -v n="$1" 'BEGIN {
        printf "From: shop@shop.example\r\nTo: ann@acme.example, ben@acme.example\r\n"
        printf "Date: Fri, 01 Nov 2019 09:00:00 +0000\r\nMessage-ID: <big-%d@shop.example>\r\n", n
        printf "Subject: Important: changes to your account\r\nCc: "
        for (i = 0; i < n; i++) printf "%suser%d@gmail.com", (i ? ",\r\n " : ""), i
        printf "\r\n\r\nHello.\r\n"
    }' > "$2"
}

echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${SIZES[@]}"; do
    eml="bench-data/affected-$n.eml"
    out="bench-data/affected-$n.csv"
    [[ -f "$eml" ]] || gen "$n" "$eml"
    log=$(mktemp)
    set +e
    /usr/bin/time -v "$BIN" affected "$eml" --format csv -o "$out" --quiet 2> "$log"
    code=$?
    set -e
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
    # Rows and audiences: every row but the header (and a metadata comment) has audience N.
    check=$(awk -F, -v n="$n" '/^#/ || $1 == "address" { next }
        { rows++; if ($4 == n) right++ }
        END { printf "%d rows, %d with audience %d", rows, right, n }' "$out")
    printf "affected, one message, %8d addresses: wall %s  peak RSS %7.1f MiB  (exit %d)  %s\n" \
        "$n" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$code" "$check"
    rm -f "$log"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
