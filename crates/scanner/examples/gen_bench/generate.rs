//! The benchmark archive's generator (see `main.rs`), a module of its own so that the
//! integration tests generate the same bytes (`tests/integration/records.rs` pins what the scan
//! says about them).

use std::io::Write;

/// xorshift64*: deterministic and fast; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const CONSUMER: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "gmx.de",
    "web.de",
    "qq.com",
    "mail.ru",
    "icloud.com",
    "aol.com",
];
const FIRST: &[&str] = &[
    "anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas", "kim",
    "lena", "marc", "nora", "oscar", "paula", "quentin", "rosa", "sam", "tara",
];
const LAST: &[&str] = &[
    "smith", "muller", "rossi", "dubois", "garcia", "novak", "jensen", "kowalski", "silva",
    "tanaka", "ivanov", "okafor", "nguyen", "larsen", "weber",
];
const WORDS: &[&str] = &[
    "invoice",
    "order",
    "delivery",
    "account",
    "update",
    "meeting",
    "contract",
    "the",
    "and",
    "for",
    "your",
    "we",
    "please",
    "find",
    "attached",
    "regarding",
    "schedule",
    "payment",
    "support",
    "ticket",
    "thanks",
    "best",
    "regards",
    "question",
    "about",
    "next",
    "week",
    "project",
    "review",
    "status",
    "shipment",
    "balance",
    "renewal",
];
const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Gen {
    rng: Rng,
    n: u64,
    /// Seconds since 2023-01-01, advancing per message.
    t: u64,
}

impl Gen {
    fn person(&mut self) -> (String, String) {
        let f = self.rng.pick(FIRST);
        let l = self.rng.pick(LAST);
        (
            format!("{f}.{l}{}", self.rng.below(1000)),
            format!("{f} {l}"),
        )
    }

    fn consumer(&mut self) -> String {
        let (local, _) = self.person();
        format!("{local}@{}", self.rng.pick(CONSUMER))
    }

    fn client_domain(&mut self) -> String {
        format!("client{}.example", self.rng.below(5000))
    }

    fn colleague(&mut self) -> String {
        let (local, _) = self.person();
        format!("{local}@acme.example")
    }

    fn dates(&mut self) -> (String, String) {
        self.t += 20 + self.rng.below(300);
        let day = self.t / 86_400;
        let (h, m, s) = (self.t / 3600 % 24, self.t / 60 % 60, self.t % 60);
        let wd = DAYS[(day % 7) as usize];
        let mon = MONTHS[(day / 28 % 12) as usize];
        let dd = day % 28 + 1;
        let year = 2023 + day / 336;
        (
            format!("{wd} {mon} {dd:>2} {h:02}:{m:02}:{s:02} {year}"),
            format!("{wd}, {dd:02} {mon} {year} {h:02}:{m:02}:{s:02} +0000"),
        )
    }

    fn sentence(&mut self, out: &mut Vec<u8>, words: usize) {
        for i in 0..words {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(self.rng.pick(WORDS).as_bytes());
        }
    }

    fn body(&mut self, out: &mut Vec<u8>) {
        let target = 1024 + self.rng.below(3072) as usize;
        let start = out.len();
        while out.len() - start < target {
            let w = 6 + self.rng.below(10) as usize;
            self.sentence(out, w);
            out.extend_from_slice(b".\n");
            match self.rng.below(40) {
                0 => out.extend_from_slice(b">From the minutes: quoted by the mbox writer.\n"),
                // A writer quotes every body line starting with `From `.
                1 => out
                    .extend_from_slice(b"\n>From the desk of the account manager, 12:30 daily.\n"),
                2 => out.extend_from_slice(b"\n"),
                _ => {}
            }
        }
    }

    fn attachment(&mut self, out: &mut Vec<u8>) {
        let lines = 100 + self.rng.below(700);
        out.extend_from_slice(
            b"\n--b1\nContent-Type: application/pdf; name=\"invoice.pdf\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"invoice.pdf\"\n\n",
        );
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for _ in 0..lines {
            let mut x = self.rng.next();
            for i in 0..76 {
                if i % 10 == 0 {
                    x = self.rng.next();
                }
                out.push(B64[(x & 63) as usize]);
                x >>= 6;
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b"--b1--\n");
    }

    /// One message with its `From ` line and the blank line after it.
    fn message(&mut self, out: &mut Vec<u8>) {
        self.n += 1;
        let (from_local, from_name) = self.person();
        let from = format!("{from_local}@acme.example");
        let (asctime, date) = self.dates();
        let kind = self.rng.below(1000);
        let mut to: Vec<String> = Vec::new();
        let mut cc: Vec<String> = Vec::new();
        let subject: String;
        if kind < 2 {
            // The incident: a mass mail with 1,000 customers in To.
            for _ in 0..1000 {
                to.push(self.consumer());
            }
            subject = "=?UTF-8?Q?Ihr_Konto_=E2=80=93_wichtige_=C3=84nderung?=".into();
        } else if kind < 150 {
            // A support thread: two people at one client, a colleague in Cc.
            let d = self.client_domain();
            let (a, _) = self.person();
            let (b, _) = self.person();
            to.push(format!("{a}@{d}"));
            cc.push(format!("{b}@{d}"));
            cc.push(self.colleague());
            subject = format!("Re: ticket {}", self.rng.below(100_000));
        } else if kind < 250 {
            to.push(self.colleague());
            if self.rng.below(2) == 0 {
                cc.push(self.colleague());
            }
            subject = "weekly sync".into();
        } else if kind < 260 {
            // A small leak: three consumers see each other.
            for _ in 0..3 {
                to.push(self.consumer());
            }
            subject = "Your appointment".into();
        } else {
            to.push(if self.rng.below(2) == 0 {
                self.consumer()
            } else {
                let (l, _) = self.person();
                format!("{l}@{}", self.client_domain())
            });
            subject = format!("Your order {}", self.rng.below(1_000_000));
        }
        let attach = self.rng.below(20) == 0;
        writeln!(out, "From {from} {asctime}").unwrap();
        write!(
            out,
            "Return-Path: <{from}>\nReceived: from mail.acme.example (mail.acme.example [192.0.2.{}])\n\tby mx.acme.example (Postfix) with ESMTPS id {:X}\n\tfor <{}>; {date}\nReceived: from workstation ([10.0.{}.{}])\n\tby mail.acme.example with ESMTPSA; {date}\n",
            self.rng.below(255),
            self.rng.next(),
            to[0],
            self.rng.below(255),
            self.rng.below(255)
        )
        .unwrap();
        writeln!(out, "From: \"{from_name}\" <{from}>").unwrap();
        write_list(out, "To", &to);
        if !cc.is_empty() {
            write_list(out, "Cc", &cc);
        }
        write!(
            out,
            "Subject: {subject}\nDate: {date}\nMessage-ID: <{}.{}@acme.example>\nMIME-Version: 1.0\nX-Mailer: bench\n",
            self.n,
            self.rng.next() % 1_000_000
        )
        .unwrap();
        if attach {
            out.extend_from_slice(
                b"Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n",
            );
            self.body(out);
            self.attachment(out);
        } else {
            out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\n\n");
            self.body(out);
        }
        out.push(b'\n');
    }
}

/// A header with folded lines of a few addresses each, as mail clients write them.
fn write_list(out: &mut Vec<u8>, name: &str, addrs: &[String]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for (i, a) in addrs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(if i % 3 == 0 { b",\n\t" } else { b", " });
        }
        out.extend_from_slice(a.as_bytes());
    }
    out.push(b'\n');
}

/// Writes messages to `w` until at least `target` bytes are written; returns the number of
/// messages and bytes. The same `target` gives the same bytes on every machine.
pub fn generate(target: u64, w: &mut impl Write) -> std::io::Result<(u64, u64)> {
    let mut g = Gen {
        rng: Rng(0x9E37_79B9_7F4A_7C15),
        n: 0,
        t: 0,
    };
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(1 << 16);
    while written < target {
        buf.clear();
        g.message(&mut buf);
        w.write_all(&buf)?;
        written += buf.len() as u64;
    }
    Ok((g.n, written))
}
