//! Large files, compressed files and standard input: a reader thread cuts the stream into
//! blocks at message boundaries; each block is parsed as a pool task and emitted in order.

use super::ordered::Ordered;
use super::pipeline::SmallFile;
use super::{handle, not_mail, problem, single_span, Emitter, Event, Out, Scanner};
use crate::model::{Format, Location, Message, Problem, ProblemKind, ProblemLevel};
use crate::read::compress::{self, Compression};
use crate::read::detect::{Detected, SNIFF_BYTES};
use crate::read::mbox::{self, SplitEvent, Splitter};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

/// Input bytes for progress: decoded bytes for plain input, bytes as stored for compressed
/// streams (a gzip bar read "204.00 MiB/29.12 MiB" when it counted decoded bytes).
#[derive(Default)]
pub(super) struct InputBytes {
    /// Stored minus decoded bytes of the compressed streams already finished.
    adjust: i64,
    /// The compressed stream being read: its counter and the decoded total at its start.
    current: Option<(Arc<AtomicU64>, u64)>,
}

impl InputBytes {
    fn begin(&mut self, decoded_so_far: u64, consumed: Arc<AtomicU64>) {
        self.current = Some((consumed, decoded_so_far));
    }

    fn end(&mut self, decoded_so_far: u64) {
        if let Some((consumed, start)) = self.current.take() {
            let stored = consumed.load(Ordering::Relaxed) as i64;
            self.adjust += stored - (decoded_so_far - start) as i64;
        }
    }

    /// Progress position given the decoded bytes counted so far.
    pub(super) fn progress(&self, decoded: u64) -> u64 {
        let pos = match &self.current {
            Some((consumed, start)) => *start as i64 + consumed.load(Ordering::Relaxed) as i64,
            None => decoded as i64,
        };
        (pos + self.adjust).max(0) as u64
    }
}

impl Scanner {
    pub(super) fn stream_file<T, P, E>(&self, f: &SmallFile, process: &P, em: &mut Emitter<T, E>)
    where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        let opened = File::open(&f.path).and_then(compress::decoded_counted);
        match opened {
            Ok((r, c, n)) => {
                self.stream_counted(r, c, n, f.display.clone(), f.maildir, process, em)
            }
            Err(e) => em.problem(problem(
                Location::file(f.display.clone()),
                ProblemLevel::Error,
                ProblemKind::Unreadable,
                format!("cannot read: {e}"),
            )),
        }
    }

    /// [`Scanner::stream`] with progress measured by `consumed` (bytes read as stored) while
    /// the stream is compressed: the bar's total is the size on disk.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn stream_counted<T, P, E>(
        &self,
        reader: Box<dyn Read + Send>,
        compression: Compression,
        consumed: Arc<AtomicU64>,
        path: Arc<str>,
        maildir: bool,
        process: &P,
        em: &mut Emitter<T, E>,
    ) where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
        E: FnMut(Event<T>),
    {
        if compression == Compression::None {
            return self.stream(reader, compression, path, maildir, process, em);
        }
        em.input.begin(em.stats.bytes, Arc::clone(&consumed));
        self.stream(reader, compression, path, maildir, process, em);
        em.input.end(em.stats.bytes);
    }

    /// Streams one (decoded) file or standard input.
    pub(super) fn stream<T, P, E>(
        &self,
        mut reader: Box<dyn Read + Send>,
        compression: Compression,
        path: Arc<str>,
        maildir: bool,
        process: &P,
        em: &mut Emitter<T, E>,
    ) where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
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
            Detected::Log(provider) => {
                let reader: Box<dyn Read + Send> = match read_error {
                    Some(_) => Box::new(io::empty()),
                    None => reader,
                };
                self.stream_events(
                    provider,
                    Box::new(io::Cursor::new(head).chain(reader)),
                    &path,
                    process,
                    em,
                );
                if let Some(e) = read_error {
                    em.problem(stream_error(path, 0, compression, e));
                }
            }
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
                        self.opts.journal,
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
                    let mut ordered = Ordered::new(self.opts.channel_depth.max(1) as u64 + 1);
                    self.in_place_scope(|sc| {
                        for ev in rx {
                            match ev {
                                SplitEvent::Block(block) => {
                                    let (seq, done_tx) = ordered.reserve(em);
                                    let recycle_tx = recycle_tx.clone();
                                    let path = &path;
                                    sc.spawn(move |_| {
                                        let outs = std::panic::catch_unwind(
                                            std::panic::AssertUnwindSafe(|| {
                                                self.process_block(&block, path, process)
                                            }),
                                        );
                                        let bytes = block.data().len() as u64;
                                        let _ = recycle_tx.send(block.into_buffer());
                                        let _ = done_tx.send((seq, outs, bytes));
                                    });
                                }
                                SplitEvent::TooLarge {
                                    offset,
                                    index,
                                    bytes,
                                } => {
                                    ordered.drain(em);
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
                                    ordered.drain(em);
                                    em.problem(stream_error(
                                        path.clone(),
                                        offset,
                                        compression,
                                        error,
                                    ))
                                }
                            }
                        }
                        ordered.drain(em);
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
        P: Fn(&mut Message<'_>) -> T + Sync,
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
                        block.data(),
                        span,
                        loc,
                        Format::Mbox,
                        last,
                        self.opts.journal,
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
            line: None,
        },
        level: ProblemLevel::Error,
        kind,
        reason,
        detail_code: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::scan::{Event, ScanOptions, Scanner};
    use std::io::Write;

    /// Positions of the progress events of a scan of `path`.
    fn progress_of(path: &std::path::Path) -> Vec<u64> {
        let scanner = Scanner::new(ScanOptions::default());
        let mut seen = Vec::new();
        scanner.scan(
            &[path.to_string_lossy().into_owned()],
            |_| (),
            |ev| {
                if let Event::Progress { bytes, .. } = ev {
                    seen.push(bytes);
                }
            },
        );
        seen
    }

    #[test]
    fn gzip_progress_counts_decoded_bytes_regression() {
        let mut mbox = Vec::new();
        for i in 0..6000 {
            write!(
                mbox,
                "From sender@example.com Mon Jan  1 00:00:00 2024\nFrom: s@example.com\n\
                 To: r{i}@example.org\nSubject: note {i}\n\n{}\n\n",
                "the same line of body text again and again\n".repeat(20)
            )
            .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("archive.mbox.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&mbox).unwrap();
        let packed = e.finish().unwrap();
        std::fs::write(&gz, &packed).unwrap();
        let on_disk = packed.len() as u64;
        assert!(
            on_disk * 10 < mbox.len() as u64,
            "the test needs a well-compressed input"
        );

        let seen = progress_of(&gz);
        assert!(seen.len() >= 2, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        // Never past the size on disk, and at it when the stream is done.
        assert!(seen.iter().all(|&b| b <= on_disk), "{seen:?} > {on_disk}");
        assert_eq!(*seen.last().unwrap(), on_disk);

        // Plain input still counts its bytes.
        let plain = dir.path().join("archive.mbox");
        std::fs::write(&plain, &mbox).unwrap();
        assert_eq!(*progress_of(&plain).last().unwrap(), mbox.len() as u64);
    }
}
