#!/usr/bin/env python3
"""The Python standard-library baseline for the scan benchmark.

Does the same header job as `leakaudit scan` with only the standard library: read every
message of an mbox with `mailbox.mbox`, parse its header block, extract the addresses of
To/Cc/Bcc/Resent-To/Resent-Cc/Resent-Bcc with `email.utils.getaddresses`, and count the
messages whose recipients span two or more external domains (not the From domain).

The fastest honest use of the standard library: messages are read as bytes and only the
header block is parsed (`BytesHeaderParser`), so Python is not charged for parsing bodies.

Usage: py_headers.py MBOX   -> prints one JSON line {"messages": N, "exposing": M, ...}
"""

import email.parser
import email.policy
import email.utils
import json
import mailbox
import sys
import time

FIELDS = ("To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc")


def main(path: str) -> None:
    started = time.perf_counter()
    box = mailbox.mbox(path, create=False)
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    messages = exposing = addresses = 0
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        headers = parser.parsebytes(raw)
        messages += 1
        sender = email.utils.getaddresses(headers.get_all("From", []))
        sender_domain = sender[0][1].rpartition("@")[2].lower() if sender else ""
        values = []
        for field in FIELDS:
            values.extend(str(v) for v in headers.get_all(field, []))
        domains = set()
        for _name, addr in email.utils.getaddresses(values):
            if "@" not in addr:
                continue
            addresses += 1
            domain = addr.rpartition("@")[2].lower()
            if domain != sender_domain:
                domains.add(domain)
        if len(domains) >= 2:
            exposing += 1
    print(
        json.dumps(
            {
                "messages": messages,
                "exposing": exposing,
                "addresses": addresses,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
