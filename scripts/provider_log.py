#!/usr/bin/env python3
"""Writes the messages of an mbox as an email provider's event log, following the provider's
documented layout, for tests and benchmarks (never real data: give it fixture or generated
mail). Standard library only.

  scripts/provider_log.py ses MBOX [--deliveries] [--sns] > events.jsonl
  scripts/provider_log.py mailgun MBOX [--deliveries] [--pages] > events.jsonl
  scripts/provider_log.py postmark MBOX [--pages] > messages.jsonl

ses: Amazon SES event publishing records as Kinesis Data Firehose writes them, one JSON
object per line ("Retrieving Amazon SES event data from Firehose",
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-firehose-contents.html;
the `mail` object: https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html):
per message a Send event whose `mail` has `messageId` (an SES id), `destination` (every
recipient of To, Cc and Bcc), `headers` (the original fields, unfolded, as SES writes them when
the configuration set includes headers) and `commonHeaders` (from, to, cc, messageId, subject,
date: no Bcc). --deliveries adds one Delivery event per recipient after all Send events of
its batch, as SES publishes them (the same `mail` object, `delivery.recipients`). --sns wraps
each event in an SNS notification (`"Type": "Notification"`, the event as the `Message`
string), as an SNS subscription delivers it.

mailgun: events as the Events API returns them
(https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Events/, the
event structure of "Tracking messages / Events"): one `accepted` event per recipient (and with
--deliveries one `delivered` event per recipient after its batch), each with `recipient`,
`timestamp`, `envelope` and `message.headers` (to, from, subject, message-id: no Cc, no Bcc,
no Date). One event per line; --pages writes Events API pages instead (`{"items": [...],
"paging": {...}}`, 300 events each, one page per line).

postmark: outbound messages as the Messages API returns them
(https://postmarkapp.com/developer/api/messages-api, "Outbound message search"): one record
per message with `MessageID`, `From`, `To`/`Cc`/`Bcc` (arrays of Email and Name),
`Recipients`, `Subject`, `ReceivedAt`, `Status`. One record per line; --pages writes search
pages (`{"TotalCount": n, "Messages": [...]}`, 500 records each, one per line).
"""
import argparse
import email.utils
import hashlib
import json
import mailbox
import sys
from datetime import datetime, timezone


def clean(value):
    """A header value as SES writes it: unfolded, text (undecodable bytes replaced)."""
    if not isinstance(value, str):
        value = str(value)
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(part.strip() for part in value.replace("\r", "").split("\n"))


def ses_mail(msg, index):
    headers = [{"name": k, "value": clean(v)} for k, v in msg.items()]
    fields = {k.lower(): [clean(v) for v in msg.get_all(k, [])] for k in msg.keys()}
    to, cc, bcc = (fields.get(k, []) for k in ("to", "cc", "bcc"))
    destination = []
    for _, addr in email.utils.getaddresses(to + cc + bcc):
        if addr and addr not in destination:
            destination.append(addr)
    when = None
    if fields.get("date"):
        try:
            when = email.utils.parsedate_to_datetime(fields["date"][0])
        except (TypeError, ValueError):
            when = None
    when = (when or datetime(2019, 11, 1, tzinfo=timezone.utc)).astimezone(timezone.utc)
    sender = email.utils.parseaddr(fields.get("from", [""])[0])[1]
    digest = hashlib.sha256(f"{index}:{fields.get('message-id')}".encode()).hexdigest()
    common = {"from": fields.get("from", []), "to": to}
    if cc:
        common["cc"] = cc
    if fields.get("message-id"):
        common["messageId"] = fields["message-id"][0].strip("<> ")
    if fields.get("subject"):
        common["subject"] = fields["subject"][0]
    if fields.get("date"):
        common["date"] = fields["date"][0]
    return {
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "source": sender,
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/shop.example",
        "sendingAccountId": "123456789012",
        "messageId": f"0100016e{digest[:8]}-{digest[8:16]}-{digest[16:20]}-{digest[20:32]}-000000",
        "destination": destination,
        "headersTruncated": False,
        "headers": headers,
        "commonHeaders": common,
        "tags": {"ses:configuration-set": ["leakaudit-test"]},
    }


def mailgun(args, emit_line):
    page = []

    def emit(event):
        if not args.pages:
            emit_line(event)
            return
        page.append(event)
        if len(page) == 300:
            flush()

    def flush():
        if page:
            emit_line({"items": list(page), "paging": {
                "next": "https://api.mailgun.net/v3/shop.example/events/W3siYiI6dHJ1ZX0=",
                "previous": "https://api.mailgun.net/v3/shop.example/events/W3siYiI6ZmFsc2V9"}})
            page.clear()

    delivered = []
    for i, msg in enumerate(mailbox.mbox(args.mbox, create=False)):
        mail = ses_mail(msg, i)
        fields = {k.lower(): [clean(v) for v in msg.get_all(k, [])] for k in msg.keys()}
        headers = {"to": ", ".join(fields.get("to", [])),
                   "message-id": mail["commonHeaders"].get("messageId", ""),
                   "from": ", ".join(fields.get("from", [])),
                   "subject": fields.get("subject", [""])[0]}
        when = datetime.strptime(mail["timestamp"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=timezone.utc)
        for n, r in enumerate(mail["destination"]):
            event = {"event": "accepted", "id": f"{mail['messageId'][8:30]}-{n}",
                     "timestamp": when.timestamp(), "log-level": "info", "method": "http",
                     "recipient": r, "recipient-domain": r.rsplit("@", 1)[-1],
                     "envelope": {"sender": mail["source"], "targets": r, "transport": "smtp"},
                     "message": {"headers": headers, "attachments": [], "size": 4096},
                     "flags": {"is-authenticated": True, "is-test-mode": False},
                     "tags": [], "user-variables": {}, "storage": {
                         "url": "https://storage.eu.mailgun.net/v3/domains/shop.example/messages/EXAMPLE",
                         "key": "EXAMPLE"}}
            emit(event)
            if args.deliveries:
                delivered.append(dict(event, event="delivered", **{"delivery-status": {
                    "code": 250, "message": "OK", "attempt-no": 1}}))
        if len(delivered) >= 200:
            for d in delivered:
                emit(d)
            delivered.clear()
    for d in delivered:
        emit(d)
    flush()


def postmark(args, emit_line):
    page = []

    def flush():
        if page:
            emit_line({"TotalCount": len(page), "Messages": list(page)})
            page.clear()

    for i, msg in enumerate(mailbox.mbox(args.mbox, create=False)):
        mail = ses_mail(msg, i)
        fields = {k.lower(): [clean(v) for v in msg.get_all(k, [])] for k in msg.keys()}
        people = lambda k: [{"Email": a, "Name": n or None}
                            for n, a in email.utils.getaddresses(fields.get(k, [])) if a]
        digest = hashlib.sha256(f"{i}:{mail['messageId']}".encode()).hexdigest()
        record = {
            "Tag": "", "MessageID": f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}",
            "MessageStream": "broadcast", "To": people("to"), "Cc": people("cc"), "Bcc": people("bcc"),
            "Recipients": mail["destination"],
            "ReceivedAt": mail["timestamp"].replace(".000Z", ".0000000+00:00"),
            "From": ", ".join(fields.get("from", [])), "Subject": fields.get("subject", [""])[0],
            "Attachments": [], "Status": "Sent", "TrackOpens": False, "TrackLinks": "None",
            "Metadata": {}, "Sandboxed": False}
        if args.pages:
            page.append(record)
            if len(page) == 500:
                flush()
        else:
            emit_line(record)
    flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("provider", choices=["ses", "mailgun", "postmark"])
    ap.add_argument("mbox")
    ap.add_argument("--deliveries", action="store_true")
    ap.add_argument("--sns", action="store_true")
    ap.add_argument("--pages", action="store_true")
    ap.add_argument("--max-bytes", type=int, default=0,
                    help="stop after about this many bytes (benchmarks)")
    args = ap.parse_args()
    out = sys.stdout
    written = [0]

    def emit_line(obj):
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        out.write(line)
        written[0] += len(line)
        if args.max_bytes and written[0] >= args.max_bytes:
            out.flush()
            sys.exit(0)

    def emit(event):
        if args.sns:
            event = {
                "Type": "Notification",
                "MessageId": hashlib.sha256(json.dumps(event).encode()).hexdigest()[:36],
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
                "Message": json.dumps(event, separators=(",", ":")),
                "Timestamp": event["mail"]["timestamp"],
            }
        line = json.dumps(event, separators=(",", ":")) + "\n"
        out.write(line)
        written[0] += len(line)
        if args.max_bytes and written[0] >= args.max_bytes:
            out.flush()
            sys.exit(0)

    if args.provider == "mailgun":
        mailgun(args, emit_line)
        return
    if args.provider == "postmark":
        postmark(args, emit_line)
        return
    def deliveries(batch):
        if args.deliveries:
            for m in batch:
                for r in m["destination"]:
                    emit({"eventType": "Delivery", "mail": m, "delivery": {
                        "timestamp": m["timestamp"], "recipients": [r],
                        "processingTimeMillis": 546, "smtpResponse": "250 ok",
                        "reportingMTA": "a8-70.smtp-out.amazonses.com"}})

    batch = []
    for i, msg in enumerate(mailbox.mbox(args.mbox, create=False)):
        mail = ses_mail(msg, i)
        emit({"eventType": "Send", "mail": mail, "send": {}})
        batch.append(mail)
        if len(batch) == 50:
            deliveries(batch)
            batch = []
    deliveries(batch)


if __name__ == "__main__":
    main()
