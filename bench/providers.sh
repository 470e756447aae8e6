#!/usr/bin/env bash
# Provider event-log benchmark (issue 33; a benchmark, not a timed test). From the synthetic
# mbox of bench/run.sh (generated into bench-data/ if missing), scripts/provider_log.py writes
# these logs into bench-data/ (gitignored), each at most SIZE_MB:
#   - ses-deliveries-<SIZE>mb.jsonl: a Send event per message and a Delivery event per
#     recipient, as SES publishes them (mass-mail chunks make most of the bytes);
#   - ses-send-<SIZE>mb.jsonl: Send events only (every line a new message: the per-message
#     worst case);
#   - mailgun-deliveries-<SIZE>mb.jsonl: accepted and delivered events, one per recipient;
#   - postmark-<SIZE>mb.jsonl: one outbound message record per message.
# Then `leakaudit scan` on each, RUNS times: MB/s, messages/s and peak RSS (target: >= 200 MB/s,
# memory bounded whatever the log's size).
#
# Usage: bench/providers.sh [SIZE_MB] [RUNS]   (env: CARGO_TARGET_DIR, PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-1024}"
RUNS="${2:-3}"
TARGET="${CARGO_TARGET_DIR:-target}"
PYTHON="${PYTHON:-python3}"
MBOX="bench-data/bench-1024mb.mbox"

cargo build --release -q -p leakaudit
BIN="$TARGET/release/leakaudit"
if [[ ! -f "$MBOX" ]]; then
    cargo build --release -q -p leakaudit-scanner --example gen_bench
    "$TARGET/release/examples/gen_bench" 1024 "$MBOX" >&2
fi
max=$((SIZE_MB * 1024 * 1024))
KINDS=(ses-deliveries ses-send mailgun-deliveries postmark)
for kind in "${KINDS[@]}"; do
    log="bench-data/$kind-${SIZE_MB}mb.jsonl"
    if [[ ! -s "$log" ]]; then
        echo "generating $log ..." >&2
        args=(); [[ $kind == *-deliveries ]] && args=(--deliveries)
        "$PYTHON" scripts/provider_log.py "${kind%%-*}" "$MBOX" "${args[@]}" --max-bytes "$max" > "$log.part"
        mv "$log.part" "$log"
    fi
done

echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in "${KINDS[@]}"; do
    log="bench-data/$kind-${SIZE_MB}mb.jsonl"
    bytes=$(stat -c %s "$log")
    cat "$log" > /dev/null
    for i in $(seq "$RUNS"); do
        out=$( { /usr/bin/time -f "TIME %e %M" "$BIN" scan "$log" -o /dev/null; } 2>&1 || true)
        wall=$(awk '/^TIME/ {print $2}' <<<"$out"); rss=$(awk '/^TIME/ {print $3}' <<<"$out")
        msgs=$(sed -n 's/^messages read: \([0-9]*\).*/\1/p' <<<"$out")
        awk -v k="$kind" -v b="$bytes" -v w="$wall" -v r="$rss" -v m="$msgs" -v i="$i" 'BEGIN {
            printf "%-18s run %d: %.0f MB in %.2f s: %.0f MB/s, %.0f messages/s (%d messages), peak RSS %.0f MiB\n",
                k, i, b / 1e6, w, b / 1e6 / w, m / w, m, r / 1024 }'
    done
done
