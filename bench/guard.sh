#!/usr/bin/env bash
# SMTP guard benchmark (issue 31; a benchmark, not a timed test). Postfix's smtp-source sends
# MESSAGES messages of SIZE bytes over SESSIONS parallel sessions, straight into smtp-sink and
# through `leakaudit guard smtp` into the same smtp-sink, interleaved RUNS times. Prints the
# throughputs and their ratio (target >= 80%), the guard's per-message latency from its
# verdict log (p50/p99: reading DATA, the verdict, passing it on; target: p99 added < 5 ms),
# the time to decide one message with 1,000 visible recipients (target < 5 ms) and the
# guard's peak RSS (target < 64 MiB).
#
# Usage: bench/guard.sh [MESSAGES] [SESSIONS] [SIZE] [RUNS]   (env: CARGO_TARGET_DIR, PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${1:-10000}"
SESSIONS="${2:-20}"
SIZE="${3:-10240}"
RUNS="${4:-3}"
TARGET="${CARGO_TARGET_DIR:-target}"
PYTHON="${PYTHON:-python3}"
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)

cargo build --release -q -p leakaudit
BIN="$TARGET/release/leakaudit"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on $1" >&2; exit 1; }

sink_port=$(port)
user=(); [[ $(id -u) == 0 ]] && user=(-u nobody)
"$SINK" "${user[@]}" "127.0.0.1:$sink_port" 256 >/dev/null 2>&1 & pids+=($!)
wait_port "$sink_port"
guard_port=$(port)
"$BIN" guard smtp --listen "127.0.0.1:$guard_port" --upstream "127.0.0.1:$sink_port" \
    --max-sessions 256 --verdict-log "$work/verdicts.jsonl" 2>/dev/null & guard=$!; pids+=($guard)
wait_port "$guard_port"

echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "smtp-source: $MESSAGES messages of $SIZE bytes, $SESSIONS sessions, $RUNS runs each"
# CPU seconds (user + system) a process has used so far.
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
sink_pid=$(pgrep -P "${pids[0]}" smtp-sink || echo "${pids[0]}")
send() {
    local start end
    start=$(date +%s.%N)
    # -d: each session carries its share of the messages, as a mailer's connection does.
    TIMEFORMAT='%U %S'
    { time "$SOURCE" -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@shop.example \
        -t customer@gmail.com "127.0.0.1:$1" >/dev/null; } 2>"$work/source-cpu"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
# CPU per run: smtp-source, smtp-sink and the guard, summed over the runs of each path.
declare -A used=([src_d]=0 [src_g]=0 [sink_d]=0 [sink_g]=0 [guard]=0)
add() { used[$1]=$(echo "${used[$1]} + $2" | bc); }
direct=(); guarded=()
for i in $(seq "$RUNS"); do
    s0=$(cpu "$sink_pid")
    d=$(send "$sink_port"); add src_d "$(awk '{print $1 + $2}' "$work/source-cpu")"
    s1=$(cpu "$sink_pid"); g0=$(cpu "$guard")
    g=$(send "$guard_port"); add src_g "$(awk '{print $1 + $2}' "$work/source-cpu")"
    add sink_d "$(echo "$s1 - $s0" | bc)"; add sink_g "$(echo "$(cpu "$sink_pid") - $s1" | bc)"
    add guard "$(echo "$(cpu "$guard") - $g0" | bc)"
    direct+=("$d"); guarded+=("$g")
    printf 'run %d: direct %.2f s (%.0f msg/s), through the guard %.2f s (%.0f msg/s)\n' \
        "$i" "$d" "$(echo "$MESSAGES / $d" | bc -l)" "$g" "$(echo "$MESSAGES / $g" | bc -l)"
done

# One message with 1,000 visible recipients (refused): the guard's decision time.
"$PYTHON" - "$guard_port" <<'EOF'
import smtplib, sys
rcpts = [f"c{i}@gmail.com" for i in range(1000)]
msg = ("From: news@shop.example\r\nTo: " + ", ".join(rcpts) +
       "\r\nSubject: News\r\nMessage-ID: <big@shop.example>\r\n\r\nHello\r\n").encode()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
try:
    s.sendmail("news@shop.example", rcpts[:10], msg)
except smtplib.SMTPDataError as e:
    pass
s.quit()
EOF
rss=$(awk '/VmHWM/ {print $2}' "/proc/$guard/status")
per() { echo "scale=3; ${used[$1]} / $RUNS" | bc; }
echo "CPU seconds per run of $MESSAGES messages: direct path: smtp-source $(per src_d), smtp-sink $(per sink_d); guarded path: smtp-source $(per src_g), smtp-sink $(per sink_g), the guard $(per guard)"
echo "with every core busy, the guarded path can reach at most $(echo "100 * (${used[src_d]} + ${used[sink_d]}) / (${used[src_g]} + ${used[sink_g]} + ${used[guard]})" | bc)% of the direct path's throughput"

"$PYTHON" - "$work/verdicts.jsonl" "$rss" "${direct[*]}" "${guarded[*]}" "$MESSAGES" <<'EOF'
import json, statistics, sys
path, rss, direct, guarded, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
lines = [json.loads(l) for l in open(path)]
big = [l for l in lines if l.get("message_id") == "big@shop.example"]
lat = sorted(l["latency_ms"] for l in lines if l["verdict"] == "passed")
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
d = statistics.median(float(x) for x in direct.split())
g = statistics.median(float(x) for x in guarded.split())
print(f"median: direct {n/d:.0f} msg/s, guard {n/g:.0f} msg/s: {100*d/g:.0f}% of direct (target >= 80%)")
print(f"guard latency per passed message ({len(lat)}): p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {lat[-1]:.2f} ms (target p99 < 5 ms)")
if big:
    print(f"1,000 visible recipients: {big[0]['verdict']} in {big[0]['latency_ms']:.2f} ms (target < 5 ms)")
print(f"guard peak RSS: {rss/1024:.1f} MiB (target < 64 MiB)")
EOF
