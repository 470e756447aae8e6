#!/usr/bin/env python3
"""Rebuilds fuzz/seeds/<target>/ from the repository's fixtures and a few messages of
../shared/corpora (when present). Small on purpose: a few dozen files per target, each at most
a few KiB, so that libFuzzer starts from real structure without a slow first pass.
Run from anywhere: python3 fuzz/make_seeds.py"""

import hashlib
import pathlib
import re
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
CORPORA = ROOT.parent / "shared" / "corpora"
MAX = 8 * 1024
CAP = 48


def files(*globs):
    out = []
    for g in globs:
        out.extend(sorted(p for p in ROOT.glob(g) if p.is_file()))
    return out


def corpus(sub, n):
    d = CORPORA / sub
    if not d.is_dir():
        return []
    return sorted(p for p in d.rglob("*") if p.is_file())[:n]


def put(target, data):
    if not data:
        return
    data = data[:MAX]
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def header_block(raw):
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[: m.end()] if m else raw


def fields(raw, names):
    """Unfolded-as-written values of the named header fields."""
    out = []
    block = header_block(raw)
    for m in re.finditer(rb"(?im)^(%s):[ \t]*((?:.*)(?:\r?\n[ \t].*)*)" % b"|".join(names), block):
        out.append(m.group(2).rstrip(b"\r\n"))
    return out


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    emls = files("fixtures/headers/*.eml", "fixtures/check/*.eml", "fixtures/triage/*.eml",
                 "fixtures/rules/*/*", "fixtures/readers/mh-annotated/*")
    emls = [p for p in emls if p.suffix in (".eml", ".txt", "")]
    real = corpus("enron-sent", 6) + corpus("spamassassin", 10)
    mboxes = files("fixtures/readers/*.mbox", "fixtures/hardening/*.mbox")

    for p in files("fixtures/headers/*.eml", "fixtures/check/*.eml") + real:
        put("headers", header_block(p.read_bytes()))

    addr_fields = [b"To", b"Cc", b"From", b"Bcc", b"Reply-To", b"Resent-To"]
    for p in emls + real + mboxes:
        for v in fields(p.read_bytes(), addr_fields):
            put("address", v)

    for p in mboxes:
        put("mbox", p.read_bytes())
    # A multi-message piece of the demo mbox.
    demo = (ROOT / "fixtures/demo/outbound.mbox").read_bytes()
    starts = [m.start() for m in re.finditer(rb"(?m)^From ", demo)]
    for i in (0, 40, 200):
        if i + 3 < len(starts):
            put("mbox", demo[starts[i]:starts[i + 3]])

    for p in emls + real:
        raw = p.read_bytes()
        if re.search(rb"(?i)multipart|base64|quoted-printable|text/html|message/rfc822", raw):
            put("mime", raw)
    mime_real = [p for p in corpus("spamassassin", 400)
                 if len(p.read_bytes()) <= MAX and re.search(rb"(?i)multipart/", p.read_bytes())]
    for p in mime_real[:20]:
        put("mime", p.read_bytes())
    for p in files("fixtures/check/*.eml"):
        put("mime", p.read_bytes())

    for p in files("fixtures/readers/journal/*.eml"):
        put("journal", p.read_bytes())
    for p in files("fixtures/providers/*/*.json*"):
        put("events", p.read_bytes())

    for p in files("rules/content.toml", "rules/exposure.toml"):
        text = p.read_bytes()
        put("rules", text)
        for chunk in re.split(rb"(?m)^(?=\[\[rule\]\])", text):
            put("rules", chunk)

    for text in [
        b'internal_domains = ["example.com", "mail.example.com"]\n',
        b'internal_domains = ["Ex\xc3\xa4mple.COM."]\narchive_kind = "sent"\nsender_domain_internal = false\n',
        b'consumer_domains_extra = ["mail.example"]\nrules_dir = "rules"\nrules_mode = "replace"\n',
        b'fail_on = "critical"\nmin_severity = "low"\nprofile = "audit"\nhistory = "history.json"\n',
        b'aliases = ["Jane.Doe@gmail.com", "\\"j smith\\"@yahoo.com"]\n',
        b'[severity_overrides]\nrecipient-exposure = "medium"\naws-access-key = "low"\n',
        b'internal_domains = ["[192.0.2.1]"]\n[severity_overrides]\n"bcc-header-leak" = "info"\n',
    ]:
        put("config", text)

    for p in files("fixtures/remediation/*.csv", "fixtures/hardening/*.csv"):
        put("accounts", p.read_bytes())
    lines = (ROOT / "fixtures/demo/accounts.csv").read_bytes().splitlines(keepends=True)
    for i in range(1, len(lines), 120):
        put("accounts", lines[0] + b"".join(lines[i:i + 5]))

    # Keep each target's seed set small: the first CAP by name (names are content hashes).
    for d in sorted(SEEDS.iterdir()):
        for extra in sorted(d.iterdir())[CAP:]:
            extra.unlink()
    for d in sorted(SEEDS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


main()
