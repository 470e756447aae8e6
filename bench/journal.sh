#!/usr/bin/env bash
# Journal-mailbox benchmark (issue 28): the synthetic mbox of bench/run.sh (deterministic,
# default 1 GB, generated into bench-data/ if missing) rendered as Exchange envelope journal
# reports (crates/scanner/examples/to_journal.rs), then `leakaudit scan` of both, interleaved,
# RUNS times each. Prints each run, the medians, the wall-time ratio and the throughputs (bytes
# and messages per second); the target is the journal mailbox's throughput within 20% of the
# plain mbox's (the same messages, each wrapped in a report: ~12% more bytes).
#
# Usage: bench/journal.sh [SIZE_MB] [RUNS]   (env: CARGO_TARGET_DIR, PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-1024}"
RUNS="${2:-3}"
PLAIN="bench-data/bench-${SIZE_MB}mb.mbox"
JOURNAL="bench-data/journal-of-bench-${SIZE_MB}mb.mbox"
TARGET="${CARGO_TARGET_DIR:-target}"
PYTHON="${PYTHON:-python3}"

cargo build --release -q -p leakaudit
cargo build --release -q -p leakaudit-scanner --example gen_bench --example to_journal
BIN="$TARGET/release/leakaudit"
mkdir -p bench-data
if [[ ! -f "$PLAIN" || ! -f "$PLAIN.meta" ]]; then
    echo "generating $PLAIN ..." >&2
    "$TARGET/release/examples/gen_bench" "$SIZE_MB" "$PLAIN" >&2
fi
if [[ ! -f "$JOURNAL" || "$JOURNAL" -ot "$PLAIN" ]]; then
    echo "rendering $JOURNAL ..." >&2
    "$TARGET/release/examples/to_journal" "$PLAIN" "$JOURNAL"
fi
echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "plain:   $PLAIN, $(stat -c %s "$PLAIN") bytes"
echo "journal: $JOURNAL, $(stat -c %s "$JOURNAL") bytes"
cat "$PLAIN" "$JOURNAL" > /dev/null

results=()
for i in $(seq "$RUNS"); do
    for kind in plain journal; do
        file=$PLAIN; [[ $kind == journal ]] && file=$JOURNAL
        r=$("$PYTHON" bench/measure.py -- "$BIN" scan --quiet --output "bench-data/journal-bench-$kind.jsonl" "$file")
        echo "run $i $kind: $r"
        results+=("$kind $r")
    done
done
printf '%s\n' "${results[@]}" | "$PYTHON" -c '
import json, os, statistics, sys
size = {"plain": os.path.getsize(sys.argv[1]), "journal": os.path.getsize(sys.argv[2])}
runs = {}
for line in sys.stdin:
    kind, js = line.split(" ", 1)
    runs.setdefault(kind, []).append(json.loads(js))
med = {k: statistics.median(r["wall"] for r in v) for k, v in runs.items()}
rss = {k: max(r["maxrss_kib"] for r in v) / 1024 for k, v in runs.items()}
for k in ("plain", "journal"):
    code = runs[k][0]["code"]
    print(f"{k:8} median wall {med[k]:.2f} s, peak RSS {rss[k]:.0f} MiB, exit {code}")
ratio = med["journal"] / med["plain"]
grow = size["journal"] / size["plain"]
print(f"journal / plain wall time: {ratio:.2f} (the same messages in {grow:.3f}x the bytes)")
mbs = {k: size[k] / med[k] / 1e6 for k in med}
share = mbs["journal"] / mbs["plain"]
print(f"throughput: journal {share:.0%} of plain in bytes/s, {1 / ratio:.0%} in messages/s")
' "$PLAIN" "$JOURNAL"
for kind in plain journal; do
    echo "$kind: $(wc -l < "bench-data/journal-bench-$kind.jsonl") exposing records"
done
