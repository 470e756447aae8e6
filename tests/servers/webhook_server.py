#!/usr/bin/env python3
"""A receiving endpoint for leakaudit's webhook executor, for the integration tests.

Python 3 standard library only; listens on loopback only. It does what the README asks of a
real receiver: verifies every signature (HMAC-SHA256 over "<timestamp>.<body>", header
`X-Leakaudit-Signature: v1=<hex>`, timestamp within the tolerance; 401 otherwise) and
performs each action once per `Idempotency-Key` (a repeated key answers 200 with
"duplicate" and performs nothing). State survives a restart: the records file is read back.

Every request is recorded as one JSON line in --records (`event`: accepted, duplicate,
bad-signature, stale, injected-503, refused). Faults on request: --fail-every N answers every
Nth request 503; --slow-every N performs every Nth then waits --slow-secs before answering
(past the client's timeout); --refuse-account ID answers 422 for that account's actions;
--die-after N kills the process (SIGKILL) right after recording the Nth accepted action,
before answering it.

Prints `PORT <n>` on stdout once listening (--port 0 picks a free one).
"""

import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--secret-file", required=True)
    p.add_argument("--records", required=True)
    p.add_argument("--tolerance", type=int, default=300)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--slow-every", type=int, default=0)
    p.add_argument("--slow-secs", type=float, default=0.0)
    p.add_argument("--refuse-account", action="append", default=[])
    p.add_argument("--die-after", type=int, default=0)
    args = p.parse_args()

    with open(args.secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    performed = set()
    if os.path.exists(args.records):
        with open(args.records) as f:
            for line in f:
                r = json.loads(line)
                if r.get("event") == "accepted":
                    performed.add(r["key"])
    # Records hold reset links (live tokens): owner-only, like every file with secrets.
    records = os.fdopen(os.open(args.records, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a")
    state = {"requests": 0, "accepted_now": 0}

    def record(**fields):
        records.write(json.dumps(fields, sort_keys=True) + "\n")
        records.flush()
        os.fsync(records.fileno())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.close_connection = True
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The client timed out first (a --slow-every request): it will retry.
                pass

        def do_POST(self):
            state["requests"] += 1
            n = state["requests"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = self.headers.get("Idempotency-Key", "")
            ts = self.headers.get("X-Leakaudit-Timestamp", "")
            sig = self.headers.get("X-Leakaudit-Signature", "")
            expected = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(sig.encode(), expected.encode()):
                record(event="bad-signature", key=key, request=n)
                return self.answer(401, {"error": "bad signature"})
            if not ts.isdigit() or abs(time.time() - int(ts)) > args.tolerance:
                record(event="stale", key=key, request=n)
                return self.answer(401, {"error": "stale timestamp"})
            action = json.loads(body)
            if action.get("action_id") != key:
                return self.answer(400, {"error": "Idempotency-Key is not the action id"})
            if args.fail_every and n % args.fail_every == 0:
                record(event="injected-503", key=key, request=n)
                return self.answer(503, {"error": "try again"})
            if action["account_id"] in args.refuse_account:
                record(event="refused", key=key, request=n)
                return self.answer(422, {"error": "account under legal hold"})
            if key in performed:
                # Performed once; a resent reset carries the link of the notification that
                # will go out (the run that first sent it was killed), so the latest wins.
                record(event="duplicate", key=key, request=n, action=action)
                return self.answer(200, {"status": "duplicate", "action_id": key})
            performed.add(key)
            state["accepted_now"] += 1
            record(event="accepted", key=key, request=n, action=action)
            if args.die_after and state["accepted_now"] >= args.die_after:
                os.kill(os.getpid(), signal.SIGKILL)
            if args.slow_every and n % args.slow_every == 0:
                time.sleep(args.slow_secs)
            return self.answer(200, {"status": "done", "action_id": key})

    server = HTTPServer(("127.0.0.1", args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
