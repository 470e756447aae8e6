//! Small files: read whole by a worker, in chunks processed in parallel, emitted in order.

use super::{handle, not_mail, problem, single_span, Emitter, Event, Out, Scanner};
use crate::model::{Format, Location, Message, ProblemKind, ProblemLevel};
use crate::read::compress::Compression;
use crate::read::detect::Detected;
use crate::read::mbox;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

/// A file read by a worker, or a file to stream on the calling thread.
enum FileOut<T> {
    Done { outs: Vec<Out<T>>, bytes: u64 },
    Stream,
}

pub(super) struct SmallFile {
    pub(super) path: PathBuf,
    pub(super) display: Arc<str>,
    pub(super) size: u64,
    pub(super) maildir: bool,
}

impl Scanner {
    /// Reads, parses and processes a chunk of files in parallel, then emits in order.
    pub(super) fn flush<T, P, E>(
        &self,
        chunk: &mut Vec<SmallFile>,
        process: &P,
        em: &mut Emitter<T, E>,
    ) where
        T: Send,
        P: Fn(&mut Message<'_>) -> T + Sync,
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
        P: Fn(&mut Message<'_>) -> T + Sync,
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
            // An event log is read in order, a message per provider message id.
            Detected::Log(_) => return FileOut::Stream,
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
                        self.opts.journal,
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
                    self.opts.journal,
                    &mut outs,
                );
            }
        }
        FileOut::Done {
            outs,
            bytes: data.len() as u64,
        }
    }
}
