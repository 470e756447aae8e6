#!/usr/bin/env python3
"""Generates a synthetic outgoing-mail journal for the affected-users memory benchmark
(issue 9), deterministically (fixed seed: the same arguments give the same bytes).

Usage: gen_journal.py [SIZE_MB] [OUT]     (defaults: 1024, bench-data/journal-1024mb.mbox)

Writes OUT (mbox), OUT.meta (messages, bytes, address exposures) and OUT.accounts.csv (an
account for every second customer). The mix: 1:1 customer mail with 3-6 KB bodies (most of
the bytes), support threads, and the incident: mass mails of 100 customers in To (batches
of one mailing, re-sent, so addresses repeat across messages) and replies that attach a CSV
of 50 customers to the wrong person (content exposures). About 250,000 address exposures
per GB over a pool of 120,000 customers.
"""

import os
import random
import sys

CONSUMER = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "gmx.de", "web.de"]
CLIENTS = [f"client{i}.example" for i in range(400)]
FIRST = ["anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas"]
LAST = ["smith", "muller", "rossi", "dubois", "garcia", "novak", "jensen", "silva", "weber"]
WORDS = ("invoice order delivery account payment refund ticket update thanks please "
         "regards shipment address change request confirm reference").split()
POOL = 120_000


def customer(i):
    return f"{FIRST[i % 10]}.{LAST[(i // 10) % 9]}{i}@{CONSUMER[i % len(CONSUMER)]}"


def body(rng, size):
    words = []
    n = 0
    while n < size:
        w = WORDS[rng.randrange(len(WORDS))]
        words.append(w)
        n += len(w) + 1
    text = " ".join(words)
    return "\n".join(text[i:i + 72] for i in range(0, len(text), 72)) + "\n"


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    out = sys.argv[2] if len(sys.argv) > 2 else f"bench-data/journal-{size_mb}mb.mbox"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    rng = random.Random(9)
    target = size_mb * 1_000_000
    written = messages = exposures = 0
    tmp = out + ".partial"
    t = 1_572_595_200  # 2019-11-01
    # A pool of bodies: generating every body's words made the script ten times slower.
    bodies = [body(rng, rng.randrange(3000, 6000)) for _ in range(256)]
    with open(tmp, "w", encoding="ascii", newline="\n", buffering=1 << 20) as f:
        while written < target:
            messages += 1
            t += rng.randrange(1, 60)
            kind = rng.randrange(1000)
            to, cc, attach = [], [], None
            if kind < 10:
                # The mass mail: a batch of 100 customers in To.
                start = rng.randrange(POOL // 100) * 100
                to = [customer(start + k) for k in range(100)]
                subject = "Important: changes to your account"
                exposures += 100
            elif kind < 13:
                # A CSV of 50 customers attached to a reply to one client.
                to = [f"buyer@{CLIENTS[rng.randrange(len(CLIENTS))]}"]
                start = rng.randrange(POOL - 50)
                attach = "email,name\n" + "".join(
                    f"{customer(start + k)},Customer {start + k}\n" for k in range(50))
                subject = "Re: the list you asked for"
                exposures += 50
            elif kind < 150:
                d = CLIENTS[rng.randrange(len(CLIENTS))]
                to = [f"{FIRST[rng.randrange(10)]}@{d}"]
                cc = [f"{LAST[rng.randrange(9)]}@{d}", "support@shop.example"]
                subject = f"Re: ticket {rng.randrange(100_000)}"
            else:
                to = [customer(rng.randrange(POOL))]
                subject = f"Your order {rng.randrange(1_000_000)}"
            date = (f"Fri, 01 Nov 2019 {(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:"
                    f"{t % 60:02d} +0000")
            head = (
                f"From shop@shop.example Fri Nov  1 09:00:00 2019\n"
                f"Received: from app.shop.example by mx.shop.example; {date}\n"
                f"From: Shop <shop@shop.example>\n"
                f"To: {', '.join(to)}\n"
                + (f"Cc: {', '.join(cc)}\n" if cc else "")
                + f"Subject: {subject}\n"
                f"Date: {date}\n"
                f"Message-ID: <{messages}.{t}@shop.example>\n"
                "MIME-Version: 1.0\n"
            )
            text = bodies[rng.randrange(len(bodies))]
            if attach:
                msg = (head + 'Content-Type: multipart/mixed; boundary="b1"\n\n'
                       "--b1\nContent-Type: text/plain; charset=utf-8\n\n" + text
                       + '--b1\nContent-Type: text/csv; name="clients.csv"\n'
                       'Content-Disposition: attachment; filename="clients.csv"\n\n'
                       + attach + "--b1--\n\n")
            else:
                msg = head + "Content-Type: text/plain; charset=utf-8\n\n" + text + "\n"
            f.write(msg)
            written += len(msg)
    os.replace(tmp, out)
    with open(out + ".meta", "w") as m:
        m.write(f"messages={messages}\nbytes={written}\naddress_exposures={exposures}\n")
    with open(out + ".accounts.csv", "w") as a:
        a.write("id,email,has_2fa,balance,locale,failed_logins,failed_logins_since\n")
        for i in range(0, POOL, 2):
            a.write(f"C-{i},{customer(i)},{'true' if i % 3 == 0 else 'false'},"
                    f"{(i % 97) * 1.5:.2f},en,0,2019-11-01\n")
    print(f"{out}: {messages} messages, {written} bytes, {exposures} address exposures")


if __name__ == "__main__":
    main()
