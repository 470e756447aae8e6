//! One client session: a transaction proxy in front of the upstream.
//!
//! ```text
//! client ──EHLO/MAIL/RCPT/RSET/NOOP/XFORWARD──> upstream     (relayed as they come: the
//!        <──────────── the upstream's reply ───────────────     client gets its answers)
//! client ──DATA──> guard: 354, reads the whole message (dot-unstuffed, size-capped)
//!        guard: Auditor::verdict (over 64 KiB: on the blocking pool)
//!          clean (or monitor) ──DATA + message──> upstream; its final reply to the client
//!          violation ──RSET──> upstream; 550 5.7.1 rule + fingerprint to the client
//!          not fully audited ──RSET──> upstream; 451 4.7.0 (or 550, configured)
//! ```
//!
//! The guard answers the end of DATA only after the upstream answered it: a message is
//! never accepted and then lost. Anything unsure (upstream down, slow, gone; an error inside
//! the guard) is a tempfail, so the mail stays queued at the client. Commands are parsed
//! with `smtp-proto` (Stalwart's parser); the upstream's replies too.

use crate::config::{GuardConfig, OnUnaudited, OnViolation, MAX_COMMAND_LINE};
use crate::log::{Entry, Log};
use leakaudit_policy::audit::{Auditor, Outcome, Verdict};
use smtp_proto::request::receiver::DataReceiver;
use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{Request, Response};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// What every session shares.
pub(crate) struct Shared {
    pub(crate) cfg: GuardConfig,
    pub(crate) auditor: Arc<Auditor>,
    pub(crate) log: Log,
}

/// ESMTP extensions passed on from the upstream's EHLO reply; every other one is dropped
/// (CHUNKING: BDAT data would bypass the audit; STARTTLS and AUTH: the guard terminates
/// neither).
const KEPT_EXTENSIONS: [&str; 7] = [
    "PIPELINING",
    "8BITMIME",
    "SIZE",
    "ENHANCEDSTATUSCODES",
    "SMTPUTF8",
    "XFORWARD",
    "DSN",
];

/// Messages up to this size are decided without leaving the session's thread.
const INLINE_VERDICT_BYTES: usize = 64 << 10;

/// A message with more header fields than this is not audited (parsing them all is the cost a
/// hostile client would aim at): it gets the not-fully-audited reply.
const MAX_HEADER_FIELDS: usize = 2000;

/// The header fields of `message` (lines of its header block that do not continue another),
/// counted up to `limit + 1`.
fn header_fields(message: &[u8], limit: usize) -> usize {
    let mut n = 0;
    let mut rest = message;
    while n <= limit {
        let line_end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        if line == b"\r\n" || line == b"\n" || line.is_empty() {
            break;
        }
        if !matches!(line[0], b' ' | b'\t') {
            n += 1;
        }
        rest = &rest[line_end..];
    }
    n
}

/// Why a session ends early.
enum End {
    /// The client went away (or timed out, already told).
    Client,
    /// The upstream failed: the client was told `421`/`451`.
    Upstream,
}

struct Client {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    buf: Vec<u8>,
}

/// One client line, or why there is none.
enum Line {
    Line(Vec<u8>),
    TooLong,
}

/// The message data of a DATA command.
enum Data {
    Message(Vec<u8>),
    TooBig,
}

impl Client {
    async fn fill(&mut self, timeout: Duration) -> Result<(), End> {
        // Read into the buffer's spare room: no zero-filled scratch block per read.
        self.buf.reserve(64 << 10);
        match tokio::time::timeout(timeout, self.r.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(End::Client),
            Ok(Ok(_)) => Ok(()),
            Err(_) => {
                let _ = self
                    .say(421, [4, 4, 2], "timeout waiting for the client, closing")
                    .await;
                Err(End::Client)
            }
        }
    }

    async fn line(&mut self, timeout: Duration) -> Result<Line, End> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.len() > MAX_COMMAND_LINE {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Line(line));
            }
            if self.buf.len() > MAX_COMMAND_LINE {
                // Skip to the end of the overlong line before answering it.
                self.buf.clear();
                loop {
                    self.fill(timeout).await?;
                    if let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                        self.buf.drain(..=pos);
                        return Ok(Line::TooLong);
                    }
                    self.buf.clear();
                }
            }
            self.fill(timeout).await?;
        }
    }

    /// Reads the message up to the lone `.` (dot-unstuffed by `smtp-proto`, which does not let
    /// a bare-LF `.` end it: no smuggling), keeping at most `max` bytes.
    async fn data(&mut self, max: usize, timeout: Duration) -> Result<Data, End> {
        let mut rx = DataReceiver::new();
        let mut message = Vec::new();
        let mut too_big = false;
        loop {
            let mut it = self.buf.iter();
            let before = it.len();
            let done = if too_big {
                let mut scratch = Vec::new();
                rx.ingest(&mut it, &mut scratch)
            } else {
                rx.ingest(&mut it, &mut message)
            };
            let used = before - it.len();
            self.buf.drain(..used);
            if message.len() > max {
                too_big = true;
                message = Vec::new();
            }
            if done {
                return Ok(if too_big {
                    Data::TooBig
                } else {
                    Data::Message(message)
                });
            }
            self.fill(timeout).await?;
        }
    }

    /// A complete command line the client already sent (pipelined), without waiting.
    fn buffered_line(&mut self) -> Option<Vec<u8>> {
        let pos = memchr::memchr(b'\n', &self.buf)?;
        (pos < MAX_COMMAND_LINE).then(|| self.buf.drain(..=pos).collect())
    }

    /// Puts a line taken by [`Client::buffered_line`] back.
    fn unread(&mut self, line: Vec<u8>) {
        self.buf.splice(0..0, line);
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.w.write_all(bytes).await.map_err(|_| End::Client)
    }

    async fn say(&mut self, code: u16, esc: [u8; 3], text: &str) -> Result<(), End> {
        self.write(&reply_bytes(code, esc, text)).await
    }

    async fn relay(&mut self, r: &Response<String>) -> Result<(), End> {
        self.write(&reply_bytes(r.code, r.esc, &r.message)).await
    }
}

/// A reply as written: one line per line of `text` (`code-` continued, `code ` last), with
/// the enhanced status code when there is one.
fn reply_bytes(code: u16, esc: [u8; 3], text: &str) -> Vec<u8> {
    let esc = match esc {
        [0, 0, 0] => String::new(),
        [a, b, c] => format!("{a}.{b}.{c} "),
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(
            format!("{code}{sep}{esc}{}\r\n", l.trim_end_matches('\r')).as_bytes(),
        );
    }
    out
}

struct Upstream {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Upstream {
    async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Upstream> {
        let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = s.set_nodelay(true);
        let (r, w) = s.into_split();
        Ok(Upstream {
            r,
            w,
            buf: Vec::new(),
        })
    }

    async fn reply(&mut self, timeout: Duration) -> io::Result<Response<String>> {
        let mut rx = ResponseReceiver::default();
        let deadline = Instant::now() + timeout;
        loop {
            if !self.buf.is_empty() {
                let mut it = self.buf.iter();
                let before = it.len();
                let parsed = rx.parse(&mut it);
                let used = before - it.len();
                self.buf.drain(..used);
                match parsed {
                    Ok(r) => return Ok(r),
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("upstream reply: {e:?}"),
                        ))
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.buf.reserve(8192);
            match tokio::time::timeout(left, self.r.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "upstream closed the connection",
                    ))
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "upstream reply timed out",
                    ))
                }
            }
        }
    }

    async fn command(&mut self, line: &[u8], timeout: Duration) -> io::Result<Response<String>> {
        self.w.write_all(line).await?;
        self.reply(timeout).await
    }
}

/// The message as sent on: dot-stuffed after every line feed (so no bare-LF `.` can end it
/// early at the upstream), ending in CRLF, then the lone `.`.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut rest = message;
    loop {
        if rest.first() == Some(&b'.') {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', rest) {
            Some(nl) => {
                out.extend_from_slice(&rest[..=nl]);
                rest = &rest[nl + 1..];
            }
            None => {
                out.extend_from_slice(rest);
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The short reason of a refusal: never an address (a rule's message could quote one).
fn safe_reason(text: &str) -> &str {
    if text.contains('@') || text.len() > 200 {
        "see the rule"
    } else {
        text
    }
}

/// One session, from the greeting to QUIT (or a failure).
pub(crate) async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut client = Client {
        r,
        w,
        buf: Vec::new(),
    };
    let _ = session(&mut client, peer, &shared).await;
    let _ = client.w.shutdown().await;
}

async fn session(client: &mut Client, peer: SocketAddr, shared: &Shared) -> Result<(), End> {
    let cfg = &shared.cfg;
    let t = cfg.timeouts;
    let mut up = match Upstream::connect(cfg.upstream, t.upstream).await {
        Ok(u) => u,
        Err(_) => {
            client
                .say(421, [4, 4, 1], "upstream unavailable, try again later")
                .await?;
            return Err(End::Upstream);
        }
    };
    let greeting = match up.reply(t.upstream).await {
        Ok(g) => g,
        Err(_) => {
            client
                .say(421, [4, 4, 1], "upstream unavailable, try again later")
                .await?;
            return Err(End::Upstream);
        }
    };
    client.relay(&greeting).await?;
    if greeting.code != 220 {
        return Ok(());
    }
    let mut sender: Option<String> = None;
    let mut rcpts = 0usize;
    // Whether the upstream said PIPELINING in its EHLO reply: then commands the client
    // pipelined go on in one write, and their replies come back in order.
    let mut pipelining = false;
    loop {
        let line = match client.line(t.command).await? {
            Line::Line(l) => l,
            Line::TooLong => {
                client.say(500, [5, 5, 2], "line too long").await?;
                continue;
            }
        };
        // XFORWARD (Postfix's client attributes) is passed on as it came.
        if line.len() > 9 && line[..9].eq_ignore_ascii_case(b"XFORWARD ") {
            let r = upstream_or_421(client, up.command(&line, t.upstream).await).await?;
            client.relay(&r).await?;
            continue;
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(smtp_proto::Error::UnknownCommand) => {
                client.say(500, [5, 5, 2], "command not recognized").await?;
                continue;
            }
            Err(smtp_proto::Error::InvalidSenderAddress) => {
                client.say(501, [5, 1, 7], "bad sender address").await?;
                continue;
            }
            Err(smtp_proto::Error::InvalidRecipientAddress) => {
                client.say(501, [5, 1, 3], "bad recipient address").await?;
                continue;
            }
            Err(_) => {
                client.say(501, [5, 5, 4], "syntax error").await?;
                continue;
            }
        };
        match request {
            Request::Ehlo { .. } | Request::Lhlo { .. } => {
                let r = upstream_or_421(client, up.command(&line, t.upstream).await).await?;
                sender = None;
                rcpts = 0;
                if r.code == 250 {
                    pipelining = r
                        .message
                        .split('\n')
                        .skip(1)
                        .any(|l| l.trim().eq_ignore_ascii_case("PIPELINING"));
                    client.relay(&filter_ehlo(r, cfg.max_size)).await?;
                } else {
                    client.relay(&r).await?;
                }
            }
            Request::Helo { .. } => {
                let r = upstream_or_421(client, up.command(&line, t.upstream).await).await?;
                sender = None;
                rcpts = 0;
                pipelining = false;
                client.relay(&r).await?;
            }
            first @ (Request::Mail { .. } | Request::Rset | Request::Rcpt { .. }) => {
                // With PIPELINING, the MAIL/RCPT/RSET lines the client already sent go on in
                // one write; each reply then comes back in order (RFC 2920).
                let mut batch = vec![(line, first)];
                while let Some(next) = pipelining.then(|| client.buffered_line()).flatten() {
                    match Request::parse(&mut next.iter()).map(Request::into_owned) {
                        Ok(r @ (Request::Mail { .. } | Request::Rset | Request::Rcpt { .. })) => {
                            batch.push((next, r))
                        }
                        _ => {
                            client.unread(next);
                            break;
                        }
                    }
                }
                let lines: Vec<u8> = batch.iter().flat_map(|(l, _)| l.iter().copied()).collect();
                if up.w.write_all(&lines).await.is_err() {
                    upstream_or_421(client, Err(io::ErrorKind::BrokenPipe.into())).await?;
                }
                let mut replies = Vec::new();
                for (_, request) in batch {
                    let r = match up.reply(t.upstream).await {
                        Ok(r) => r,
                        Err(e) => {
                            client.write(&replies).await?;
                            return upstream_or_421(client, Err(e)).await.map(|_| ());
                        }
                    };
                    let ok = (200..300).contains(&r.code);
                    match request {
                        Request::Mail { from } if ok => {
                            sender = Some(from.address);
                            rcpts = 0;
                        }
                        Request::Rcpt { .. } if ok => rcpts += 1,
                        Request::Rset => {
                            sender = None;
                            rcpts = 0;
                        }
                        _ => {}
                    }
                    replies.extend_from_slice(&reply_bytes(r.code, r.esc, &r.message));
                }
                client.write(&replies).await?;
            }
            Request::Noop { .. } | Request::Vrfy { .. } | Request::Help { .. } => {
                let r = upstream_or_421(client, up.command(&line, t.upstream).await).await?;
                client.relay(&r).await?;
            }
            Request::Quit => {
                let _ = up.command(b"QUIT\r\n", Duration::from_secs(5)).await;
                client.say(221, [2, 0, 0], "bye").await?;
                return Ok(());
            }
            Request::Bdat { .. } => {
                // Its chunk follows at once and must never be read as commands.
                client
                    .say(500, [5, 5, 1], "BDAT is not offered; closing")
                    .await?;
                let _ = up.command(b"QUIT\r\n", Duration::from_secs(5)).await;
                return Ok(());
            }
            Request::Data => {
                let Some(from) = sender.clone() else {
                    client.say(503, [5, 5, 1], "MAIL first").await?;
                    continue;
                };
                if rcpts == 0 {
                    client.say(554, [5, 5, 1], "no valid recipients").await?;
                    continue;
                }
                client
                    .say(354, [0, 0, 0], "end data with <CR><LF>.<CR><LF>")
                    .await?;
                let started = Instant::now();
                let data = client.data(cfg.max_size, t.data_block).await?;
                let outcome = deliver(client, &mut up, shared, data).await;
                let (verdict, name, reply) = match outcome {
                    Ok(d) => d,
                    Err(e) => return Err(e),
                };
                shared.log.write(&Entry {
                    time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    client: peer.to_string(),
                    sender: shared.log.sender(&from),
                    recipients: rcpts,
                    message_id: verdict.as_ref().and_then(|v| v.message_id.clone()),
                    verdict: name,
                    rules: verdict
                        .as_ref()
                        .map(|v| v.findings.iter().map(|f| f.rule_id.clone()).collect())
                        .unwrap_or_default(),
                    fingerprints: verdict
                        .as_ref()
                        .map(|v| v.findings.iter().map(|f| f.fingerprint.clone()).collect())
                        .unwrap_or_default(),
                    reply,
                    latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                });
                // The transaction is over, whatever its end.
                sender = None;
                rcpts = 0;
            }
            Request::StartTls
            | Request::Auth { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                client
                    .say(502, [5, 5, 1], "command not implemented")
                    .await?;
            }
        }
    }
}

/// The upstream's reply, or (it failed) `421 4.4.2` to the client and the end of the session.
async fn upstream_or_421(
    client: &mut Client,
    reply: io::Result<Response<String>>,
) -> Result<Response<String>, End> {
    match reply {
        Ok(r) => Ok(r),
        Err(_) => {
            client
                .say(421, [4, 4, 2], "upstream connection lost, try again later")
                .await?;
            Err(End::Upstream)
        }
    }
}

/// The upstream's EHLO reply with only the extensions the guard can pass through; SIZE is
/// the smaller of the upstream's and the guard's.
fn filter_ehlo(r: Response<String>, max_size: usize) -> Response<String> {
    let mut lines = r.message.split('\n');
    let mut out: Vec<String> = lines.next().map(str::to_string).into_iter().collect();
    for l in lines {
        let l = l.trim_end_matches('\r');
        let mut words = l.split_ascii_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        if !KEPT_EXTENSIONS.contains(&keyword.as_str()) {
            continue;
        }
        if keyword == "SIZE" {
            let theirs = words.next().and_then(|n| n.parse::<usize>().ok());
            let size = match theirs {
                Some(n) if n > 0 => n.min(max_size),
                _ => max_size,
            };
            out.push(format!("SIZE {size}"));
        } else {
            out.push(l.to_string());
        }
    }
    if !out.iter().skip(1).any(|l| l.starts_with("SIZE")) {
        out.push(format!("SIZE {max_size}"));
    }
    Response {
        code: r.code,
        esc: r.esc,
        message: out.join("\n"),
    }
}

/// The reply to a message the guard could not fully audit (`--on-unaudited`).
fn unaudited_reply(cfg: &GuardConfig) -> (u16, [u8; 3], &'static str) {
    match cfg.on_unaudited {
        OnUnaudited::Tempfail => (
            451,
            [4, 7, 0],
            "leakaudit: the message could not be fully audited, try again later",
        ),
        OnUnaudited::Reject => (
            550,
            [5, 7, 1],
            "leakaudit: the message could not be fully audited",
        ),
    }
}

/// Answers a message that is not audited, then has the upstream forget its envelope.
async fn refuse_unaudited(
    client: &mut Client,
    up: &mut Upstream,
    cfg: &GuardConfig,
    verdict: Verdict,
) -> Result<(Option<Verdict>, &'static str, String), End> {
    let (code, esc, text) = unaudited_reply(cfg);
    client.say(code, esc, text).await?;
    let _ = up.command(b"RSET\r\n", cfg.timeouts.upstream).await;
    let name = if code == 451 {
        "tempfailed"
    } else {
        "rejected"
    };
    Ok((
        Some(verdict),
        name,
        format!("{code} {}.{}.{} {text}", esc[0], esc[1], esc[2]),
    ))
}

/// Decides the message and answers the end of DATA: `(verdict, log name, reply)`.
async fn deliver(
    client: &mut Client,
    up: &mut Upstream,
    shared: &Shared,
    data: Data,
) -> Result<(Option<Verdict>, &'static str, String), End> {
    let cfg = &shared.cfg;
    let t = cfg.timeouts;
    let message = match data {
        Data::TooBig => {
            let _ = up.command(b"RSET\r\n", t.upstream).await;
            let text = format!("message exceeds the limit of {} bytes", cfg.max_size);
            client.say(552, [5, 3, 4], &text).await?;
            return Ok((None, "too-big", format!("552 5.3.4 {text}")));
        }
        Data::Message(m) => Arc::new(m),
    };
    if header_fields(&message, MAX_HEADER_FIELDS) > MAX_HEADER_FIELDS {
        let verdict = Verdict {
            findings: Vec::new(),
            fail_on: shared.auditor.fail_on(),
            failing: 0,
            not_fully_audited: None,
            unreadable: Some(format!("more than {MAX_HEADER_FIELDS} header fields")),
            message_id: None,
        };
        return refuse_unaudited(client, up, cfg, verdict).await;
    }
    // A small message is decided on the session's own thread (tens of microseconds: a hand-off
    // to the blocking pool cost more than the verdict); a large one on the blocking pool, so
    // that it never stalls the other sessions.
    let decided = if message.len() <= INLINE_VERDICT_BYTES {
        Ok(shared.auditor.verdict(&message))
    } else {
        let auditor = shared.auditor.clone();
        let bytes = message.clone();
        tokio::task::spawn_blocking(move || auditor.verdict(&bytes)).await
    };
    let verdict = match decided {
        Ok(v) => v,
        Err(_) => {
            let _ = up.command(b"RSET\r\n", t.upstream).await;
            let text = "internal error while auditing, try again later";
            client.say(451, [4, 3, 0], text).await?;
            return Ok((None, "tempfailed", format!("451 4.3.0 {text}")));
        }
    };
    let refuse = |code: u16, esc: [u8; 3], text: String| (code, esc, text);
    let refusal = match verdict.outcome() {
        Outcome::Error => {
            let (code, esc, text) = unaudited_reply(cfg);
            Some(refuse(code, esc, text.to_string()))
        }
        Outcome::Violation if cfg.on_violation == OnViolation::Reject => {
            let f = verdict
                .findings
                .iter()
                .find(|f| f.severity >= verdict.fail_on)
                .expect("a violation has a failing finding");
            Some(refuse(
                550,
                [5, 7, 1],
                format!(
                    "leakaudit: refused by rule {} (finding {}): {}",
                    f.rule_id,
                    &f.fingerprint[..16.min(f.fingerprint.len())],
                    safe_reason(&f.message)
                ),
            ))
        }
        _ => None,
    };
    if let Some((code, esc, text)) = refusal {
        // Nothing was passed on: the client has its answer first, then the upstream forgets
        // the envelope.
        client.say(code, esc, &text).await?;
        let _ = up.command(b"RSET\r\n", t.upstream).await;
        let name = if code == 451 {
            "tempfailed"
        } else {
            "rejected"
        };
        let reply = format!("{code} {}.{}.{} {text}", esc[0], esc[1], esc[2]);
        return Ok((Some(verdict), name, reply));
    }
    let monitored = verdict.outcome() == Outcome::Violation;
    let mut out = Vec::with_capacity(message.len() + 256);
    if monitored {
        let rules: Vec<&str> = verdict
            .findings
            .iter()
            .map(|f| f.rule_id.as_str())
            .collect();
        out.extend_from_slice(
            format!(
                "X-Leakaudit-Verdict: violation; rules={}; fingerprint={}\r\n",
                rules.join(","),
                verdict.findings[0].fingerprint
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(&message);
    let sent = async {
        let r = up.command(b"DATA\r\n", t.upstream).await?;
        if r.code != 354 {
            return Ok(r);
        }
        up.w.write_all(&stuffed(&out)).await?;
        up.reply(t.upstream_data).await
    }
    .await;
    match sent {
        Ok(r) => {
            client.relay(&r).await?;
            let name = match (r.code, monitored) {
                (200..=299, true) => "monitored",
                (200..=299, false) => "passed",
                _ => "upstream-refused",
            };
            let reply = String::from_utf8_lossy(&reply_bytes(r.code, r.esc, &r.message))
                .trim_end()
                .to_string();
            Ok((Some(verdict), name, reply))
        }
        Err(_) => {
            let text = "upstream unavailable, try again later";
            client.say(451, [4, 4, 2], text).await?;
            Err(End::Upstream)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_protects_every_line_start_and_ends_the_data() {
        assert_eq!(stuffed(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(stuffed(b".\n.\r\n"), b"..\n..\r\n.\r\n");
        assert_eq!(stuffed(b"no end"), b"no end\r\n.\r\n");
    }

    #[test]
    fn ehlo_keeps_only_what_the_guard_passes_through() {
        let r = Response {
            code: 250,
            esc: [0, 0, 0],
            message: "sink.example\nPIPELINING\nSIZE 10240000\nSTARTTLS\nCHUNKING\n8BITMIME\nAUTH PLAIN\nXFORWARD NAME ADDR".into(),
        };
        let f = filter_ehlo(r, 1 << 20);
        assert_eq!(
            f.message,
            "sink.example\nPIPELINING\nSIZE 1048576\n8BITMIME\nXFORWARD NAME ADDR"
        );
        let bytes = String::from_utf8(reply_bytes(f.code, f.esc, &f.message)).unwrap();
        assert!(bytes.starts_with("250-sink.example\r\n250-PIPELINING\r\n"));
        assert!(bytes.ends_with("250 XFORWARD NAME ADDR\r\n"));
    }

    #[test]
    fn header_fields_are_counted_up_to_the_limit() {
        let m = b"A: 1\r\nB: 2\r\n folded\r\nC: 3\r\n\r\nD: not a header\r\n";
        assert_eq!(header_fields(m, 10), 3);
        let many: Vec<u8> = (0..50)
            .flat_map(|i| format!("X-{i}: v\r\n").into_bytes())
            .collect();
        assert_eq!(header_fields(&many, 10), 11);
    }

    #[test]
    fn a_refusal_reason_never_carries_an_address() {
        assert_eq!(
            safe_reason("2 external addresses visible"),
            "2 external addresses visible"
        );
        assert_eq!(safe_reason("sent to bob@example.com"), "see the rule");
    }
}
