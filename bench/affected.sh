#!/usr/bin/env bash
# Affected-users memory benchmark (issue 9). Peak RSS from /usr/bin/time -v of each run.
#
# 1. One message with N visible addresses (default 20,000 and 1,000,000: N consumer addresses
#    in Cc, two colleagues of one business in To): `affected` (every address listed once with
#    audience N: N consumer parties + the business, minus its own), `incident` (the same check
#    on DIR/affected.csv), `scan` and `check`. Target: each under 512 MiB at 1,000,000.
# 2. `journal`: a 1 GB journal with ~250,000 address exposures (headers and CSV attachments;
#    bench/gen_journal.py, generated into bench-data/ if missing): `affected` and `incident`.
#    Target: each under 256 MiB.
# 3. `domain`: one message with 200,000 addresses at one business domain and one consumer
#    (`check --profile audit`): the triage grouped a party's addresses with a search per
#    address, quadratic in one domain's size (118 s here); now a sort (under a second).
#
# Also the library alone (no CLI): crates/remediation/examples/affected_mem.rs.
#
# Usage: bench/affected.sh [N... | journal | domain]    (env: CARGO_TARGET_DIR, PYTHON, JOURNAL_MB)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
PYTHON="${PYTHON:-python3}"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(20000 1000000 journal domain)

cargo build --release -q -p leakaudit
BIN="$TARGET/release/leakaudit"
mkdir -p bench-data

gen() { # N FILE [TO CC_DOMAIN]: one .eml, the Cc header folded one address per line
    awk -v n="$1" -v to="${3:-ann@acme.example, ben@acme.example}" -v dom="${4:-gmail.com}" 'BEGIN {
        printf "From: shop@shop.example\r\nTo: %s\r\n", to
        printf "Date: Fri, 01 Nov 2019 09:00:00 +0000\r\nMessage-ID: <big-%d@shop.example>\r\n", n
        printf "Subject: Important: changes to your account\r\nCc: "
        for (i = 0; i < n; i++) printf "%suser%d@%s", (i ? ",\r\n " : ""), i, dom
        printf "\r\n\r\nHello.\r\n"
    }' > "$2"
}

# measure NAME CMD...: one line with wall time, peak RSS and exit code.
measure() {
    local name=$1 log code rss wall
    shift
    log=$(mktemp)
    set +e
    /usr/bin/time -v "$@" > /dev/null 2> "$log"
    code=$?
    set -e
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
    printf "%-44s wall %8s  peak RSS %7.1f MiB  (exit %d)\n" \
        "$name" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$code"
    rm -f "$log"
}

# audiences N CSV: rows, and how many have audience N (a `#` metadata line is skipped).
audiences() {
    awk -F, -v n="$1" '/^#/ || $1 == "address" { next }
        { rows++; if ($4 == n) right++ }
        END { printf "    %d rows, %d with audience %d\n", rows, right, n }' "$2"
}

echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${SIZES[@]}"; do
    if [[ "$n" == journal ]]; then
        mb="${JOURNAL_MB:-1024}"
        data="bench-data/journal-${mb}mb.mbox"
        [[ -f "$data" && -f "$data.meta" ]] || "$PYTHON" bench/gen_journal.py "$mb" "$data" >&2
        echo "journal: $data, $(tr '\n' ' ' < "$data.meta")"
        cat "$data" > /dev/null
        measure "affected, journal ${mb} MB" \
            "$BIN" affected "$data" --format csv -o bench-data/journal-affected.csv --quiet
        echo "    $(grep -vc '^#' bench-data/journal-affected.csv) lines in the list"
        rm -rf bench-data/journal-incident
        measure "incident, journal ${mb} MB" "$BIN" incident "$data" \
            --accounts "$data.accounts.csv" --out bench-data/journal-incident --quiet
        continue
    fi
    if [[ "$n" == domain ]]; then
        eml=bench-data/one-domain-200000.eml
        [[ -f "$eml" ]] || gen 200000 "$eml" jane@gmail.com acme.example
        measure "check --profile audit, one domain, 200000" \
            "$BIN" check --quiet --profile audit "$eml"
        continue
    fi
    eml="bench-data/affected-$n.eml"
    [[ -f "$eml" ]] || gen "$n" "$eml"
    measure "affected, one message, $n addresses" \
        "$BIN" affected "$eml" --format csv -o "bench-data/affected-$n.csv" --quiet
    audiences "$n" "bench-data/affected-$n.csv"
    rm -rf "bench-data/incident-$n"
    measure "incident, one message, $n addresses" "$BIN" incident "$eml" \
        --accounts fixtures/demo/accounts.csv --out "bench-data/incident-$n" --quiet
    audiences "$n" "bench-data/incident-$n/affected.csv"
    measure "scan, one message, $n addresses" \
        "$BIN" scan --quiet -o "bench-data/scan-$n.jsonl" "$eml"
    measure "check, one message, $n addresses" "$BIN" check --quiet "$eml"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
