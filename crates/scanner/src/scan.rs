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
//! Memory is bounded: at most `2 * channel_depth + 2` blocks are alive at once (one being
//! read, `channel_depth` queued, up to `channel_depth + 1` being parsed by the pool while the
//! calling thread emits finished ones in order), plus a chunk of small files (at most
//! `block_bytes` plus one file). Nothing is memory-mapped and no file is read whole unless it is small.

use crate::headers;
use crate::model::{Format, Location, Message, Problem, ProblemKind, ProblemLevel};
use crate::read::compress::{self, Compression};
use crate::read::detect::{self, Detected, SNIFF_BYTES};
use crate::read::mbox::{self, Span, SplitEvent, Splitter};
use crate::read::walk::{self, Item};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

/// How to read. `Default` is right for the command line.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `--format`: read every file as this format instead of detecting it.
    pub format: Option<Format>,
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
            block_bytes: 8 << 20,
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

    fn count(&mut self, p: &Problem) {
        match p.kind {
            ProblemKind::Unreadable => self.unreadable += 1,
            ProblemKind::NotMail => self.not_mail += 1,
            ProblemKind::Malformed => self.malformed += 1,
            ProblemKind::Truncated => self.truncated += 1,
            ProblemKind::HeaderWarning => {}
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

/// A file read by a worker, or a file to stream on the calling thread.
enum FileOut<T> {
    Done { outs: Vec<Out<T>>, bytes: u64 },
    Stream,
}

struct SmallFile {
    path: PathBuf,
    display: Arc<str>,
    size: u64,
    maildir: bool,
}

/// Keeps the totals and passes events on.
struct Emitter<T, E> {
    stats: ScanStats,
    on_event: E,
    _item: std::marker::PhantomData<fn(T)>,
}

impl<T, E: FnMut(Event<T>)> Emitter<T, E> {
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
            bytes: self.stats.bytes,
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
    pub fn scan<T, P, E>(&self, inputs: &[String], process: P, on_event: E) -> ScanStats
    where
        T: Send,
        P: Fn(&Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        let mut em = Emitter {
            stats: ScanStats::default(),
            on_event,
            _item: std::marker::PhantomData,
        };
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
                        em.stats.files += 1;
                        let loc: Arc<str> = Arc::from("-");
                        match compress::decoded(io::stdin()) {
                            Ok((r, c)) => self.stream(r, c, loc, false, &process, &mut em),
                            Err(e) => em.problem(problem(
                                Location::file(loc),
                                ProblemLevel::Error,
                                ProblemKind::Unreadable,
                                format!("cannot read standard input: {e}"),
                            )),
                        }
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

    /// Reads, parses and processes a chunk of files in parallel, then emits in order.
    fn flush<T, P, E>(&self, chunk: &mut Vec<SmallFile>, process: &P, em: &mut Emitter<T, E>)
    where
        T: Send,
        P: Fn(&Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        if chunk.is_empty() {
            return;
        }
        let files = std::mem::take(chunk);
        let results: Vec<FileOut<T>> = self.install(|| {
            files
                .par_iter()
                .with_max_len(1)
                .map(|f| self.read_small(f, process))
                .collect()
        });
        for (f, r) in files.into_iter().zip(results) {
            match r {
                FileOut::Done { outs, bytes } => {
                    em.stats.files += 1;
                    em.stats.bytes += bytes;
                    em.outs(outs);
                }
                FileOut::Stream => {
                    em.stats.files += 1;
                    self.stream_file(&f, process, em);
                }
            }
        }
        em.progress();
    }

    /// A worker reads a small file whole. Large or compressed files go back to the calling
    /// thread to be streamed.
    fn read_small<T, P>(&self, f: &SmallFile, process: &P) -> FileOut<T>
    where
        T: Send,
        P: Fn(&Message<'_>) -> T + Sync,
    {
        if f.size > self.opts.small_file_bytes as u64 {
            return FileOut::Stream;
        }
        let unreadable = |e: io::Error| FileOut::Done {
            outs: vec![Out::Prob(problem(
                Location::file(f.display.clone()),
                ProblemLevel::Error,
                ProblemKind::Unreadable,
                format!("cannot read: {e}"),
            ))],
            bytes: 0,
        };
        let file = match File::open(&f.path) {
            Ok(file) => file,
            Err(e) => return unreadable(e),
        };
        let mut data = Vec::with_capacity(f.size as usize + 1);
        let limit = self.opts.small_file_bytes as u64 + 1;
        if let Err(e) = file.take(limit).read_to_end(&mut data) {
            return unreadable(e);
        }
        if data.len() as u64 >= limit || Compression::sniff(&data) != Compression::None {
            return FileOut::Stream;
        }
        let mut outs = Vec::new();
        match self.kind(&data) {
            Detected::NotMail => outs.push(Out::Prob(not_mail(f.display.clone(), &data))),
            Detected::Mbox => {
                let spans = mbox::split(&data, true);
                let n = spans.len();
                for (i, span) in spans.into_iter().enumerate() {
                    let loc = Location::in_mbox(f.display.clone(), span.start as u64, i as u64 + 1);
                    handle(
                        process,
                        &data,
                        span,
                        loc,
                        Format::Mbox,
                        i + 1 == n,
                        &mut outs,
                    );
                }
            }
            Detected::Message => {
                let format = self.message_format(f.maildir);
                let loc = Location::file(f.display.clone());
                handle(
                    process,
                    &data,
                    single_span(&data),
                    loc,
                    format,
                    false,
                    &mut outs,
                );
            }
        }
        FileOut::Done {
            outs,
            bytes: data.len() as u64,
        }
    }

    fn kind(&self, head: &[u8]) -> Detected {
        match self.opts.format {
            Some(Format::Mbox) if !head.is_empty() => Detected::Mbox,
            Some(Format::Eml | Format::Maildir) if !head.is_empty() => Detected::Message,
            _ => detect::detect(head),
        }
    }

    fn message_format(&self, maildir: bool) -> Format {
        match self.opts.format {
            Some(f @ (Format::Eml | Format::Maildir)) => f,
            _ if maildir => Format::Maildir,
            _ => Format::Eml,
        }
    }

    fn stream_file<T, P, E>(&self, f: &SmallFile, process: &P, em: &mut Emitter<T, E>)
    where
        T: Send,
        P: Fn(&Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        let opened = File::open(&f.path).and_then(compress::decoded);
        match opened {
            Ok((r, c)) => self.stream(r, c, f.display.clone(), f.maildir, process, em),
            Err(e) => em.problem(problem(
                Location::file(f.display.clone()),
                ProblemLevel::Error,
                ProblemKind::Unreadable,
                format!("cannot read: {e}"),
            )),
        }
    }

    /// Streams one (decoded) file or standard input.
    fn stream<T, P, E>(
        &self,
        mut reader: Box<dyn Read + Send>,
        compression: Compression,
        path: Arc<str>,
        maildir: bool,
        process: &P,
        em: &mut Emitter<T, E>,
    ) where
        T: Send,
        P: Fn(&Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        // Read enough to decide the format.
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut read_error = None;
        if let Err(e) = (&mut reader)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
        {
            read_error = Some(e);
        }
        if head.is_empty() {
            if let Some(e) = read_error {
                em.problem(stream_error(path, 0, compression, e));
                return;
            }
        }
        match self.kind(&head) {
            Detected::NotMail => em.problem(not_mail(path, &head)),
            Detected::Message => {
                let format = self.message_format(maildir);
                let mut data = head;
                let limit = self.opts.max_message_bytes as u64 + 1;
                if read_error.is_none() {
                    if let Err(e) = (&mut reader)
                        .take(limit - data.len() as u64)
                        .read_to_end(&mut data)
                    {
                        read_error = Some(e);
                    }
                }
                em.stats.bytes += data.len() as u64;
                if data.len() as u64 >= limit {
                    em.problem(problem(
                        Location::file(path),
                        ProblemLevel::Error,
                        ProblemKind::Malformed,
                        format!(
                            "message larger than the limit of {} bytes; skipped",
                            self.opts.max_message_bytes
                        ),
                    ));
                    return;
                }
                let mut outs = Vec::new();
                let loc = Location::file(path.clone());
                self.install(|| {
                    handle(
                        process,
                        &data,
                        single_span(&data),
                        loc,
                        format,
                        false,
                        &mut outs,
                    )
                });
                em.outs(outs);
                if let Some(e) = read_error {
                    em.problem(stream_error(path, data.len() as u64, compression, e));
                }
            }
            Detected::Mbox => {
                // After a read error while sniffing, the decoder is not read again: what
                // was read is split as the whole stream and the error reported after it.
                let head_len = head.len() as u64;
                let reader: Box<dyn Read + Send> = if read_error.is_some() {
                    Box::new(io::empty())
                } else {
                    reader
                };
                let mut splitter = Splitter::new(
                    reader,
                    head,
                    self.opts.block_bytes,
                    self.opts.max_message_bytes,
                );
                let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
                splitter.recycle = Some(recycle_rx);
                let (tx, rx) = mpsc::sync_channel::<SplitEvent>(self.opts.channel_depth);
                std::thread::scope(|s| {
                    s.spawn(move || {
                        for ev in splitter {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                    });
                    // Each block is parsed as a pool task, up to `window` blocks at once,
                    // while this thread emits finished ones in order: no barrier per block,
                    // so the workers never wait for the (serial) emit or for each other.
                    let window = self.opts.channel_depth.max(1) as u64 + 1;
                    type Done<T> = (u64, std::thread::Result<Vec<Out<T>>>, u64);
                    let (done_tx, done_rx) = mpsc::channel::<Done<T>>();
                    let mut ready: BTreeMap<u64, (Vec<Out<T>>, u64)> = BTreeMap::new();
                    let mut sent = 0u64;
                    let mut emitted = 0u64;
                    // Waits for the next block in order and emits it.
                    let mut emit_next = |em: &mut Emitter<T, E>, emitted: &mut u64| loop {
                        if let Some((outs, bytes)) = ready.remove(emitted) {
                            em.stats.bytes += bytes;
                            em.outs(outs);
                            em.progress();
                            *emitted += 1;
                            return;
                        }
                        match done_rx.recv() {
                            Ok((seq, Ok(outs), bytes)) => {
                                ready.insert(seq, (outs, bytes));
                            }
                            Ok((_, Err(panic), _)) => std::panic::resume_unwind(panic),
                            // Unreachable: this thread holds a sender.
                            Err(_) => return,
                        }
                    };
                    self.in_place_scope(|sc| {
                        for ev in rx {
                            match ev {
                                SplitEvent::Block(block) => {
                                    while sent - emitted >= window {
                                        emit_next(em, &mut emitted);
                                    }
                                    let seq = sent;
                                    sent += 1;
                                    let done_tx = done_tx.clone();
                                    let recycle_tx = recycle_tx.clone();
                                    let path = &path;
                                    sc.spawn(move |_| {
                                        let outs = std::panic::catch_unwind(
                                            std::panic::AssertUnwindSafe(|| {
                                                self.process_block(&block, path, process)
                                            }),
                                        );
                                        let bytes = block.data.len() as u64;
                                        let _ = recycle_tx.send(block.data);
                                        let _ = done_tx.send((seq, outs, bytes));
                                    });
                                }
                                SplitEvent::TooLarge {
                                    offset,
                                    index,
                                    bytes,
                                } => {
                                    while emitted < sent {
                                        emit_next(em, &mut emitted);
                                    }
                                    em.stats.bytes += bytes;
                                    em.problem(problem(
                                        Location::in_mbox(path.clone(), offset, index),
                                        ProblemLevel::Error,
                                        ProblemKind::Malformed,
                                        format!(
                                            "message of {bytes} bytes is larger than the limit of {} bytes; skipped",
                                            self.opts.max_message_bytes
                                        ),
                                    ));
                                }
                                SplitEvent::ReadError { offset, error } => {
                                    while emitted < sent {
                                        emit_next(em, &mut emitted);
                                    }
                                    em.problem(stream_error(
                                        path.clone(),
                                        offset,
                                        compression,
                                        error,
                                    ))
                                }
                            }
                        }
                        while emitted < sent {
                            emit_next(em, &mut emitted);
                        }
                    });
                });
                if let Some(e) = read_error {
                    em.problem(stream_error(path, head_len, compression, e));
                }
            }
        }
    }

    fn process_block<T, P>(&self, block: &mbox::Block, path: &Arc<str>, process: &P) -> Vec<Out<T>>
    where
        T: Send,
        P: Fn(&Message<'_>) -> T + Sync,
    {
        let n = block.spans.len();
        let per_message: Vec<Vec<Out<T>>> = self.install(|| {
            block
                .spans
                .par_iter()
                .enumerate()
                .map(|(i, &span)| {
                    let loc = Location::in_mbox(
                        path.clone(),
                        block.base + span.start as u64,
                        block.first_index + i as u64,
                    );
                    let mut outs = Vec::with_capacity(1);
                    let last = block.last && i + 1 == n;
                    handle(
                        process,
                        &block.data,
                        span,
                        loc,
                        Format::Mbox,
                        last,
                        &mut outs,
                    );
                    outs
                })
                .collect()
        });
        per_message.into_iter().flatten().collect()
    }
}

fn stream_error(path: Arc<str>, offset: u64, c: Compression, e: io::Error) -> Problem {
    let reason = match c {
        Compression::None => format!("read error: {e}"),
        c => format!(
            "{} stream truncated or corrupt after {offset} decompressed bytes: {e}",
            c.name()
        ),
    };
    let kind = match c {
        Compression::None => ProblemKind::Unreadable,
        _ => ProblemKind::Truncated,
    };
    Problem {
        location: Location {
            path,
            offset: Some(offset),
            index: None,
        },
        level: ProblemLevel::Error,
        kind,
        reason,
        detail_code: None,
    }
}

fn not_mail(path: Arc<str>, head: &[u8]) -> Problem {
    let reason = if head.is_empty() {
        "empty file: not mail; skipped".to_string()
    } else {
        "not mail (no mbox separator line or header block at the start); skipped".to_string()
    };
    problem(
        Location::file(path),
        ProblemLevel::Warning,
        ProblemKind::NotMail,
        reason,
    )
}

/// Parses one message's header block and runs `process` on it.
fn handle<T, P>(
    process: &P,
    data: &[u8],
    span: Span,
    location: Location,
    format: Format,
    last_in_mbox: bool,
    outs: &mut Vec<Out<T>>,
) where
    P: Fn(&Message<'_>) -> T + Sync,
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
    match headers::parse_envelope(raw) {
        Ok(envelope) => {
            let msg = Message {
                location,
                format,
                raw,
                mbox_quoted: format == Format::Mbox,
                envelope,
            };
            let item = process(&msg);
            let Message {
                location, envelope, ..
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
        Err(e) => outs.push(Out::Prob(problem(
            location,
            ProblemLevel::Error,
            ProblemKind::Malformed,
            e.to_string(),
        ))),
    }
}
