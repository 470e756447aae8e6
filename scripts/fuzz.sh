#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers (cargo-fuzz / libFuzzer).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 600 s, every target
# Runs the targets one after the other, one process each (the machine is shared), and prints per
# target the executions, the coverage and the crashes. Exits 1 when any target found a crash,
# a timeout or an out-of-memory input (kept in fuzz/artifacts/TARGET/), 2 on a setup error.
# Environment: FUZZ_SANITIZER (address|none, default address), FUZZ_TIMEOUT (seconds one
# input may take before it counts as a hang, default 10), FUZZ_RSS_MB (default 2048).
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=600
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  SECONDS_EACH=$1
  shift
fi
ALL=(headers address mbox mime rules config accounts journal events)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  if [[ ! " ${ALL[*]} " =~ " $t " ]]; then
    echo "fuzz.sh: unknown target '$t' (targets: ${ALL[*]})" >&2
    exit 2
  fi
done

if ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

SANITIZER=${FUZZ_SANITIZER:-address}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS=${FUZZ_RSS_MB:-2048}
# The stable toolchain accepts the sanitizer flags cargo-fuzz passes with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
# Debug assertions on: an arithmetic overflow is a finding, as it would be in a test build.
FUZZ_FLAGS=(--sanitizer "$SANITIZER" --debug-assertions --fuzz-dir fuzz)

echo "fuzz.sh: building ${#TARGETS[@]} target(s) (sanitizer $SANITIZER)" >&2
cargo fuzz build "${FUZZ_FLAGS[@]}" || exit 2

# The mbox splitter's streaming check needs inputs longer than one 4 KiB block.
max_len() { case $1 in mbox) echo 16384 ;; *) echo 8192 ;; esac; }

failed=0
summary=()
for t in "${TARGETS[@]}"; do
  corpus=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  log=fuzz/artifacts/$t.log
  echo "fuzz.sh: $t for ${SECONDS_EACH}s" >&2
  start=$(date +%s)
  # New inputs go to the first (working) folder; the committed seeds are only read.
  cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$corpus" "fuzz/seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS" \
    -max_len="$(max_len "$t")" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  # libFuzzer stops at the first crash: one artifact per failed run.
  crashes=$(grep -c 'Test unit written to' "$log")
  arts=$(grep -Eo 'Test unit written to [^ ]+' "$log" | sed 's/Test unit written to //' | tr '\n' ' ')
  if [ $rc -ne 0 ]; then
    failed=1
    status="FAILED (exit $rc) ${arts:-see $log}"
  else
    status=clean
  fi
  line="$t: ${took}s, runs ${runs:-?}, ${cov:-cov ?}, crashes $crashes: $status"
  echo "$line"
  summary+=("$line")
done

echo "---"
printf '%s\n' "${summary[@]}"
exit $failed
