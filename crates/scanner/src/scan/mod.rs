//! The scanning pipeline: inputs -> files -> messages -> the caller's `process` closure, in
//! parallel, with results handed back in archive order.
//!
//! ```text
//!  inputs ──walk──> files (sorted) ──┬─ small files: chunks of up to `chunk_files` files,
//!                                    │  each chunk read + parsed + processed with rayon
//!                                    └─ large / compressed files and stdin: a reader thread
//!                                       cuts the stream into blocks of ~`block_bytes` at
//!                                       message boundaries -> bounded channel -> the messages
//!                                       of each block parsed + processed with rayon
//!  results of each chunk/block are collected in order and passed to `on_event` on the
//!  calling thread, so output order is deterministic whatever the thread count.
//! ```
//!
//! Files: this one (public API, totals, the per-message step shared by both paths),
//! `pipeline.rs` (chunks of small files), `stream.rs` (large, compressed and standard-input
//! streams), `ordered.rs` (the window that emits blocks in order).
//!
//! Memory is bounded: at most `2 * channel_depth + 2` blocks are alive at once (one being
//! read, `channel_depth` queued, up to `channel_depth + 1` being parsed by the pool while the
//! calling thread emits finished ones in order), plus a chunk of small files (at most
//! `block_bytes` plus one file). Nothing is memory-mapped and no file is read whole unless it is small.

mod events;
mod ordered;
mod pipeline;
mod stream;

use crate::headers;
use crate::model::{Format, Location, Message, PartsHint, Problem, ProblemKind, ProblemLevel};
use crate::read::compress;
use crate::read::detect::{self, Detected};
use crate::read::journal;
use crate::read::mbox::Span;
use crate::read::provider::Provider;
use crate::read::walk::{self, Item};
use pipeline::SmallFile;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// How to read. `Default` is right for the command line.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `--format`: read every file as this format instead of detecting it.
    pub format: Option<Format>,
    /// `--input-format journal`: every message must be a journal report (one that is not is
    /// an error); otherwise a report is recognised by its `X-MS-Journal-Report` header.
    pub journal: bool,
    /// Size of the blocks a large mbox is cut into (at message boundaries).
    pub block_bytes: usize,
    /// A message longer than this is reported (error) and skipped.
    pub max_message_bytes: usize,
    /// Files up to this size are read whole by a worker; larger ones are streamed.
    pub small_file_bytes: usize,
    /// Files per parallel chunk of small files.
    pub chunk_files: usize,
    /// Worker threads (`--threads`); `None` uses rayon's global pool (one per core).
    pub threads: Option<usize>,
    /// Blocks read ahead of the one being processed.
    pub channel_depth: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            format: None,
            journal: false,
            block_bytes: 1 << 20,
            max_message_bytes: 64 << 20,
            small_file_bytes: 1 << 20,
            chunk_files: 256,
            threads: None,
            channel_depth: 2,
        }
    }
}

/// What `scan` reports to the calling thread, in archive order.
#[derive(Debug)]
pub enum Event<T> {
    /// A message whose header block parsed, with what `process` returned for it.
    Message {
        location: Location,
        format: Format,
        item: T,
    },
    /// Something that could not be read or audited, or a warning.
    Problem(Problem),
    /// Running totals, after each block or chunk of files.
    Progress { bytes: u64, messages: u64 },
}

/// Totals of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Files (and standard input) read or attempted.
    pub files: u64,
    /// Bytes of mail read (decompressed).
    pub bytes: u64,
    /// Messages whose header block parsed.
    pub messages: u64,
    pub by_format: BTreeMap<Format, u64>,
    /// Messages without a usable header block (or too large).
    pub malformed: u64,
    /// Files or folders that could not be read.
    pub unreadable: u64,
    /// Files that are not mail.
    pub not_mail: u64,
    /// Truncated messages or compressed streams.
    pub truncated: u64,
    /// Warning-level problems (all kinds).
    pub warnings: u64,
    /// Error-level problems (all kinds): the exit code becomes 2.
    pub errors: u64,
}

impl ScanStats {
    /// Any error-level problem.
    pub fn had_errors(&self) -> bool {
        self.errors > 0
    }

    /// When no message was read from `paths`: why, as a sentence (`None` when one was). A run
    /// that read no message audited nothing, which must never look like a clean run.
    pub fn nothing_read(&self, paths: &[String]) -> Option<String> {
        if self.messages > 0 {
            return None;
        }
        let mut named: Vec<String> = paths.iter().take(3).cloned().collect();
        if paths.len() > 3 {
            named.push(format!("and {} more", paths.len() - 3));
        }
        let why = if self.files == 0 {
            "no file found".to_string()
        } else {
            let mut parts = vec![format!("{} file(s) read", self.files)];
            for (n, what) in [
                (self.not_mail, "not mail"),
                (self.unreadable, "unreadable"),
                (self.malformed, "malformed"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            parts.join(", ")
        };
        Some(format!(
            "no message was read from {} ({why}): nothing was audited",
            named.join(", ")
        ))
    }

    fn count(&mut self, p: &Problem) {
        match p.kind {
            ProblemKind::Unreadable => self.unreadable += 1,
            ProblemKind::NotMail => self.not_mail += 1,
            ProblemKind::Malformed => self.malformed += 1,
            ProblemKind::Truncated => self.truncated += 1,
            ProblemKind::HeaderWarning | ProblemKind::NotFullyAudited => {}
        }
        match p.level {
            ProblemLevel::Warning => self.warnings += 1,
            ProblemLevel::Error => self.errors += 1,
        }
    }
}

/// Total size on disk of the inputs (for a progress bar), `None` with standard input.
pub fn input_size_hint(inputs: &[String]) -> Option<u64> {
    walk::size_hint(inputs)
}

/// The reader/parser pipeline. Create once, call [`Scanner::scan`].
pub struct Scanner {
    opts: ScanOptions,
    pool: Option<rayon::ThreadPool>,
}

/// A result produced on a worker, emitted later in order.
enum Out<T> {
    Msg(Location, Format, T),
    Prob(Problem),
}

/// Keeps the totals and passes events on.
struct Emitter<T, E> {
    stats: ScanStats,
    /// Progress counts input bytes as stored: compressed streams by their compressed size.
    input: stream::InputBytes,
    on_event: E,
    _item: std::marker::PhantomData<fn(T)>,
}

impl<T, E: FnMut(Event<T>)> Emitter<T, E> {
    fn new(on_event: E) -> Self {
        Emitter {
            stats: ScanStats::default(),
            input: Default::default(),
            on_event,
            _item: std::marker::PhantomData,
        }
    }

    fn problem(&mut self, p: Problem) {
        self.stats.count(&p);
        (self.on_event)(Event::Problem(p));
    }
    fn outs(&mut self, outs: Vec<Out<T>>) {
        for o in outs {
            match o {
                Out::Msg(location, format, item) => {
                    self.stats.messages += 1;
                    *self.stats.by_format.entry(format).or_default() += 1;
                    (self.on_event)(Event::Message {
                        location,
                        format,
                        item,
                    });
                }
                Out::Prob(p) => self.problem(p),
            }
        }
    }
    fn progress(&mut self) {
        (self.on_event)(Event::Progress {
            bytes: self.input.progress(self.stats.bytes),
            messages: self.stats.messages,
        });
    }
}

fn problem(location: Location, level: ProblemLevel, kind: ProblemKind, reason: String) -> Problem {
    Problem {
        location,
        level,
        kind,
        reason,
        detail_code: None,
    }
}

/// The span of a one-message file: all of it, minus a leading `From ` line if it has one.
fn single_span(data: &[u8]) -> Span {
    let content = if data.starts_with(b"From ") {
        memchr::memchr(b'\n', data).map_or(data.len(), |nl| nl + 1)
    } else {
        0
    };
    Span {
        start: 0,
        content,
        end: data.len(),
    }
}

/// Why the last message of an mbox looks cut short, if it does: no line end at the end of
/// the stream. An error when even the header block is incomplete (recipients may be
/// missing), a warning when only the body is cut.
fn truncation(raw: &[u8]) -> Option<(ProblemLevel, &'static str)> {
    if raw.is_empty() || raw.ends_with(b"\n") {
        return None;
    }
    let header_done = raw.starts_with(b"\n")
        || raw.starts_with(b"\r\n")
        || memchr::memmem::find(raw, b"\n\n").is_some()
        || memchr::memmem::find(raw, b"\n\r\n").is_some();
    Some(if header_done {
        (
            ProblemLevel::Warning,
            "last message ends without a line end: body truncated (headers read)",
        )
    } else {
        (
            ProblemLevel::Error,
            "last message ends inside its header block: truncated",
        )
    })
}

impl Scanner {
    pub fn new(opts: ScanOptions) -> Scanner {
        let pool = opts.threads.and_then(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .thread_name(|i| format!("leakaudit-worker-{i}"))
                .build()
                .ok()
        });
        Scanner { opts, pool }
    }

    pub fn options(&self) -> &ScanOptions {
        &self.opts
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    /// Runs `op` on the calling thread; tasks it spawns run on the pool (ours or rayon's
    /// global one) and are all finished when this returns.
    fn in_place_scope<'s, R>(&self, op: impl FnOnce(&rayon::Scope<'s>) -> R) -> R {
        match &self.pool {
            Some(p) => p.in_place_scope(op),
            None => rayon::in_place_scope(op),
        }
    }

    /// Reads every input (`-` = standard input), in parallel; calls `process` on worker
    /// threads for every message whose header block parsed, and `on_event` on the calling
    /// thread in archive order (inputs in the order given, files sorted by name, messages in
    /// file order). Never panics on bad input: every problem becomes an [`Event::Problem`].
    /// `process` may take the envelope out of the message (`std::mem::take`) but must leave
    /// `envelope.warnings`: they are reported after it returns.
    pub fn scan<T, P, E>(&self, inputs: &[String], process: P, on_event: E) -> ScanStats
    where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        let mut em = Emitter::new(on_event);
        let force_maildir = self.opts.format == Some(Format::Maildir);
        for input in inputs {
            let mut chunk: Vec<SmallFile> = Vec::new();
            let mut chunk_bytes = 0u64;
            for item in walk::walk(input, force_maildir) {
                match item {
                    Item::File {
                        path,
                        display,
                        size,
                        maildir,
                    } => {
                        chunk_bytes += size.min(self.opts.small_file_bytes as u64);
                        chunk.push(SmallFile {
                            path,
                            display,
                            size,
                            maildir,
                        });
                        if chunk.len() >= self.opts.chunk_files
                            || chunk_bytes >= self.opts.block_bytes as u64
                        {
                            self.flush(&mut chunk, &process, &mut em);
                            chunk_bytes = 0;
                        }
                    }
                    Item::Stdin => {
                        self.flush(&mut chunk, &process, &mut em);
                        chunk_bytes = 0;
                        self.read_stream("-", Box::new(io::stdin()), &process, &mut em);
                    }
                    Item::Problem(p) => {
                        self.flush(&mut chunk, &process, &mut em);
                        chunk_bytes = 0;
                        em.problem(p);
                    }
                }
            }
            self.flush(&mut chunk, &process, &mut em);
        }
        em.stats
    }

    /// [`Scanner::scan`] of one stream (plain, gzip or zstd, any format), named `name` in
    /// locations: what an embedding (the Python package, a fuzz target) reads from memory or
    /// a socket.
    pub fn scan_reader<T, P, E>(
        &self,
        name: &str,
        reader: Box<dyn io::Read + Send>,
        process: P,
        on_event: E,
    ) -> ScanStats
    where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        let mut em = Emitter::new(on_event);
        self.read_stream(name, reader, &process, &mut em);
        em.progress();
        em.stats
    }

    /// One stream (standard input, or a reader an embedding gives), decompressed if need be,
    /// named `name` in locations.
    fn read_stream<T, P, E>(
        &self,
        name: &str,
        reader: Box<dyn io::Read + Send>,
        process: &P,
        em: &mut Emitter<T, E>,
    ) where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        em.stats.files += 1;
        let path: Arc<str> = Arc::from(name);
        match compress::decoded_counted(reader) {
            Ok((r, c, n)) => self.stream_counted(r, c, n, path, false, process, em),
            Err(e) => {
                let what = if name == "-" { " standard input" } else { "" };
                em.problem(problem(
                    Location::file(path),
                    ProblemLevel::Error,
                    ProblemKind::Unreadable,
                    format!("cannot read{what}: {e}"),
                ))
            }
        }
    }

    fn kind(&self, head: &[u8]) -> Detected {
        if head.is_empty() {
            return detect::detect(head);
        }
        match self.opts.format {
            Some(Format::Mbox) => Detected::Mbox,
            Some(Format::Eml | Format::Maildir) => Detected::Message,
            Some(f @ (Format::Ses | Format::Mailgun | Format::Postmark)) => {
                Provider::of(f).map_or(Detected::NotMail, Detected::Log)
            }
            None => Provider::detect(head).map_or_else(|| detect::detect(head), Detected::Log),
        }
    }

    fn message_format(&self, maildir: bool) -> Format {
        match self.opts.format {
            Some(f @ (Format::Eml | Format::Maildir)) => f,
            _ if maildir => Format::Maildir,
            _ => Format::Eml,
        }
    }
}

/// A file that is not mail is an error: nothing in it was audited, and a clean summary of
/// nothing (a provider's JSON log, a saved error page) must not pass for a clean archive.
fn not_mail(path: Arc<str>, head: &[u8]) -> Problem {
    let reason = format!(
        "not mail: looks like {} (no mbox `From ` line or header block at the start); skipped",
        detect::looks_like(head)
    );
    problem(
        Location::file(path),
        ProblemLevel::Error,
        ProblemKind::NotMail,
        reason,
    )
}

/// Parses one message's header block and runs `process` on it.
#[allow(clippy::too_many_arguments)]
fn handle<T, P>(
    process: &P,
    data: &[u8],
    span: Span,
    location: Location,
    format: Format,
    last_in_mbox: bool,
    force_journal: bool,
    outs: &mut Vec<Out<T>>,
) where
    P: Fn(&mut Message<'_>) -> T + Sync,
{
    let raw = &data[span.content..span.end];
    if last_in_mbox {
        if let Some((level, reason)) = truncation(raw) {
            outs.push(Out::Prob(problem(
                location.clone(),
                level,
                ProblemKind::Truncated,
                reason.to_string(),
            )));
        }
    }
    match read_message(raw, location, format, force_journal) {
        Ok(msg) => deliver(process, msg, outs),
        Err(p) => outs.push(Out::Prob(p)),
    }
}

impl<'a> Message<'a> {
    /// One message from its bytes (a `.eml` file, an SMTP DATA payload), parsed exactly as the
    /// archive readers parse a one-message file: a leading mbox `From ` line is skipped, an
    /// Exchange journal report becomes its original with the report's envelope recipients.
    /// `Err`: why it cannot be audited (an error problem at `<bytes>`), never a clean message.
    pub fn from_bytes(raw: &'a [u8]) -> Result<Message<'a>, Problem> {
        Self::from_bytes_at(raw, Location::file("<bytes>"))
    }

    /// [`Message::from_bytes`] with the location its findings and problems name.
    pub fn from_bytes_at(raw: &'a [u8], location: Location) -> Result<Message<'a>, Problem> {
        let span = single_span(raw);
        read_message(&raw[span.content..], location, Format::Eml, false)
    }
}

/// One message from its bytes, as every reader parses it: its header block, or, for an
/// Exchange journal report (`force_journal`: every message must be one), the attached
/// original with the report's envelope recipients. A message that cannot be audited is an
/// error problem with its location and why, never a clean message.
pub(crate) fn read_message(
    raw: &[u8],
    location: Location,
    format: Format,
    force_journal: bool,
) -> Result<Message<'_>, Problem> {
    if force_journal {
        // Its own header block is not audited, so it is not parsed either (the report reader
        // says what is wrong with one that is not a report).
        return read_journal(raw, location, format);
    }
    match headers::parse_message(raw) {
        Ok(headers::Parsed::JournalReport) => read_journal(raw, location, format),
        Ok(headers::Parsed::Message(envelope, parts)) => Ok(Message {
            location,
            format,
            raw: Cow::Borrowed(raw),
            mbox_quoted: format == Format::Mbox,
            envelope,
            parts,
        }),
        Err(e) => Err(malformed(location, e.to_string())),
    }
}

/// A message that could not be audited: an error (exit 2) with its location and why.
fn malformed(location: Location, reason: String) -> Problem {
    problem(
        location,
        ProblemLevel::Error,
        ProblemKind::Malformed,
        reason,
    )
}

/// Runs `process` on `msg` and queues the result, then its header warnings.
fn deliver<T, P>(process: &P, mut msg: Message<'_>, outs: &mut Vec<Out<T>>)
where
    P: Fn(&mut Message<'_>) -> T + Sync,
{
    // `&mut`: a processor that keeps the envelope past the message takes it instead of
    // copying it (1,000,000 recipients are 64 MiB); the warnings stay for below.
    let item = process(&mut msg);
    let Message {
        location,
        format,
        envelope,
        ..
    } = msg;
    let warnings = envelope.warnings;
    outs.push(Out::Msg(location.clone(), format, item));
    for w in warnings {
        outs.push(Out::Prob(Problem {
            location: location.clone(),
            level: ProblemLevel::Warning,
            kind: ProblemKind::HeaderWarning,
            reason: w.to_string(),
            detail_code: Some(w.kind),
        }));
    }
}

/// A journal report: the original is the message, with the report's envelope recipients. A
/// report that cannot be read is an error with the reason, never a clean message.
fn read_journal(raw: &[u8], location: Location, format: Format) -> Result<Message<'_>, Problem> {
    let located = match journal::locate(raw) {
        Ok(l) => l,
        Err(e) => return Err(malformed(location, e.to_string())),
    };
    // The original's headers first: the envelope lines then reuse the addresses they name
    // (a chunk's 575 `To:` lines are its `To` field again).
    let parsed = located.original().map(headers::parse_envelope);
    let known = match &parsed {
        Some(Ok(envelope)) => &envelope.recipients[..],
        _ => &[],
    };
    let report = match located.report(known) {
        Ok(r) => r,
        Err(e) => return Err(malformed(location, e.to_string())),
    };
    // Borrowed from the mbox block, the original keeps its `>From ` quoting; decoded, it has none.
    let mbox_quoted = format == Format::Mbox && matches!(report.original, Cow::Borrowed(_));
    // `report` is Ok only with an original, so `parsed` is there.
    let Some(parsed) = parsed else {
        return Err(malformed(
            location,
            journal::JournalError::NoOriginal.to_string(),
        ));
    };
    match parsed {
        Ok(mut envelope) => {
            envelope.envelope_recipients = report.recipients;
            Ok(Message {
                location,
                format,
                raw: report.original,
                mbox_quoted,
                envelope,
                parts: PartsHint::Unknown,
            })
        }
        Err(e) => Err(malformed(
            location,
            format!("journal report's attached original: {e}"),
        )),
    }
}
