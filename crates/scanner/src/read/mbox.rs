//! mbox: separator lines, message spans and the block splitter.
//!
//! Both quoting styles are read: mboxo and mboxrd differ only in how body lines that start
//! with `From ` were quoted when written (`>From `, and in mboxrd also `>>From ` for an
//! original `>From `). Splitting never needs unquoting: a message starts only at a `From `
//! line that begins the stream or follows a blank line AND looks like a real separator
//! (see [`is_from_line`]), so an unquoted `From ` in a body does not split a message.
//! Unquoting for content inspection is [`crate::model::Message::unquoted`].

use super::detect::{annotation_len, is_from_line};
use memchr::memmem;
use std::io::{self, Read};

/// One message inside a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the `From ` separator line (or of the content when there is none).
    pub start: usize,
    /// Offset of the first header byte (after the separator line).
    pub content: usize,
    /// End of the message, without the blank line that separates it from the next.
    pub end: usize,
}

/// Is there a message boundary (a separator line) starting at `pos`? The whole line must be
/// in `buf` unless `at_eof`.
fn boundary_at(buf: &[u8], pos: usize, at_eof: bool) -> bool {
    let blank_before = pos == 0
        || (pos >= 2 && buf[pos - 1] == b'\n' && buf[pos - 2] == b'\n')
        || (pos >= 3 && buf[pos - 1] == b'\n' && buf[pos - 2] == b'\r' && buf[pos - 3] == b'\n');
    if !blank_before {
        return false;
    }
    let rest = &buf[pos..];
    let line = match memchr::memchr(b'\n', rest) {
        Some(nl) => &rest[..nl],
        None if at_eof => rest,
        None => return false,
    };
    is_from_line(line)
}

/// Offset of the last message boundary in `buf` after position 0 whose separator line is
/// complete, if any. Used to cut a block so that no message straddles two blocks.
pub fn last_boundary(buf: &[u8]) -> Option<usize> {
    memmem::rfind_iter(buf, b"\nFrom ")
        .map(|nl| nl + 1)
        .find(|&pos| boundary_at(buf, pos, false))
}

/// Offset of the first message boundary in `buf` at or after `from`.
pub fn first_boundary(buf: &[u8], from: usize) -> Option<usize> {
    if from == 0 && boundary_at(buf, 0, false) {
        return Some(0);
    }
    let from = from.saturating_sub(1);
    memmem::find_iter(&buf[from..], b"\nFrom ")
        .map(|nl| from + nl + 1)
        .find(|&pos| boundary_at(buf, pos, false))
}

/// Splits a buffer that starts at a message boundary (or at the start of a stream) into
/// messages. A buffer that does not start with a separator line (a forced `--format mbox` on
/// a file without one) yields a first message starting at 0. MH/nmh annotation fields before
/// the first separator line ([`annotation_len`]) are not part of the message: it starts at
/// that separator.
pub fn split(buf: &[u8], at_eof: bool) -> Vec<Span> {
    let annotated = annotation_len(buf);
    let mut starts: Vec<usize> = Vec::new();
    if !buf.is_empty() {
        starts.push(annotated);
    }
    starts.extend(
        memmem::find_iter(buf, b"\nFrom ")
            .map(|nl| nl + 1)
            .filter(|&pos| pos > annotated && boundary_at(buf, pos, at_eof)),
    );
    let mut spans = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(buf.len());
        // Every start after the first passed `boundary_at` above: not checked twice.
        let separator = i > 0 || annotated > 0 || boundary_at(buf, start, at_eof);
        let content = if separator {
            memchr::memchr(b'\n', &buf[start..next]).map_or(next, |nl| start + nl + 1)
        } else {
            start
        };
        let mut end = next;
        // The blank line before the next separator (or at the end of the mbox) belongs to
        // the mbox format, not to the message. Trimmed the same way whether the next
        // separator is in this buffer or the next block, so results do not depend on where
        // blocks were cut.
        if buf[content..end].ends_with(b"\r\n\r\n") {
            end -= 2;
        } else if buf[content..end].ends_with(b"\n\n") {
            end -= 1;
        }
        spans.push(Span {
            start,
            content,
            end: end.max(content),
        });
    }
    spans
}

/// A piece of an mbox stream that holds only whole messages.
#[derive(Debug)]
pub struct Block {
    /// The block's bytes are `buf[..len]`; the rest is initialised room kept with the buffer,
    /// so that a recycled buffer is read into again without being zero-filled first.
    buf: Vec<u8>,
    len: usize,
    /// Offset of `data()[0]` in the (decompressed) stream.
    pub base: u64,
    pub spans: Vec<Span>,
    /// 1-based index of the first span in the stream.
    pub first_index: u64,
    /// The last block of the stream (its last message may be truncated).
    pub last: bool,
}

impl Block {
    /// The block's bytes (the spans index into them).
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The buffer, to hand back to the splitter ([`Splitter::recycle`]).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// Makes `v` `len` initialised bytes long (`len` >= its length), its first `keep` bytes kept.
/// When it must be reallocated and nothing is kept, a fresh zeroed allocation instead of a
/// copy: fresh pages from the system are zero already, so no memset either.
fn grow_zeroed(v: &mut Vec<u8>, len: usize, keep: usize) {
    if keep == 0 && v.capacity() < len {
        *v = vec![0; len];
    } else {
        v.resize(len, 0);
    }
}

/// Something the splitter has to report besides blocks.
#[derive(Debug)]
pub enum SplitEvent {
    Block(Block),
    /// A message longer than the limit was skipped: its offset, index and bytes seen.
    TooLarge {
        offset: u64,
        index: u64,
        bytes: u64,
    },
    /// The stream failed (a truncated or corrupt compressed stream, an I/O error) at offset.
    ReadError {
        offset: u64,
        error: io::Error,
    },
}

/// Cuts a stream into blocks of about `block_bytes` at message boundaries. A message longer
/// than a block grows the buffer, up to `max_message_bytes`; a longer one is skipped and
/// reported. Memory held: one buffer of about `max(block_bytes, longest message)`.
pub struct Splitter<R> {
    reader: R,
    block_bytes: usize,
    max_message_bytes: usize,
    /// The stream's next bytes are `buf[..filled]`; all of `buf` is initialised (see
    /// [`Block`]): reads go into `buf[filled..]` with no zero-filling.
    buf: Vec<u8>,
    filled: usize,
    base: u64,
    next_index: u64,
    eof: bool,
    done: bool,
    /// Inside a too-large message: discard until the next boundary.
    skipping: Option<(u64, u64, u64)>,
    pending: Option<SplitEvent>,
    /// Buffers handed back by the consumer, reused to avoid page faults on fresh allocations.
    pub recycle: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
    /// Buffers returned and not yet reused (as many as blocks were in flight at once).
    spare: Vec<Vec<u8>>,
}

impl<R: Read> Splitter<R> {
    /// `prefix` holds bytes already read from the stream (for format detection).
    pub fn new(reader: R, prefix: Vec<u8>, block_bytes: usize, max_message_bytes: usize) -> Self {
        Splitter {
            reader,
            block_bytes: block_bytes.max(4096),
            max_message_bytes: max_message_bytes.max(4096),
            filled: prefix.len(),
            buf: prefix,
            base: 0,
            next_index: 1,
            eof: false,
            done: false,
            skipping: None,
            pending: None,
            recycle: None,
            spare: Vec::new(),
        }
    }

    /// A buffer of at least `len` initialised bytes: a returned one when there is one.
    fn fresh_buffer(&mut self, len: usize) -> Vec<u8> {
        if let Some(rx) = &self.recycle {
            self.spare.extend(rx.try_iter());
        }
        // The smallest returned buffer that is large enough, else the largest: each is kept
        // (a dropped one goes back to the allocator, and its pages fault in again later).
        let pick = (self.spare.iter().enumerate())
            .filter(|(_, v)| v.len() >= len)
            .min_by_key(|(_, v)| v.len())
            .or_else(|| (self.spare.iter().enumerate()).max_by_key(|(_, v)| v.len()))
            .map(|(i, _)| i);
        let mut v = match pick {
            Some(i) => self.spare.swap_remove(i),
            None => Vec::new(),
        };
        if v.len() < len {
            // With room for a longer carried tail than this one: the tail varies from block
            // to block, and a buffer grown by a few bytes is a reallocation, a copy and fresh
            // pages (~20 of them per 200 MB when sized exactly). Its old bytes are not needed.
            grow_zeroed(&mut v, len.max(self.block_bytes + self.block_bytes / 4), 0);
        }
        v
    }

    /// Reads until `filled` reaches `target` bytes or the stream ends. Plain `read` calls
    /// into the initialised buffer: `read_to_end` zero-filled every block's spare room before
    /// reading into it (the decoders and the byte counter implement only `read`), which cost
    /// as much as the kernel's copy.
    fn fill(&mut self, target: usize) {
        if self.buf.len() < target {
            grow_zeroed(&mut self.buf, target, self.filled);
        }
        while !self.eof && self.filled < target {
            match self.reader.read(&mut self.buf[self.filled..target]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.eof = true;
                    self.pending = Some(SplitEvent::ReadError {
                        offset: self.base + self.filled as u64,
                        error,
                    });
                }
            }
        }
    }

    /// Drops the first `n` bytes of the stream held.
    fn discard(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
        self.base += n as u64;
    }

    /// Hands out `buf[..cut]` as a block and keeps the rest for the next one.
    fn cut(&mut self, cut: usize, last: bool) -> Block {
        let tail = self.filled - cut;
        // Room for a whole block plus the carried tail, so `fill` never grows a recycled
        // buffer (fresh pages cost page faults).
        let mut rest = self.fresh_buffer(self.block_bytes + tail);
        rest[..tail].copy_from_slice(&self.buf[cut..self.filled]);
        let buf = std::mem::replace(&mut self.buf, rest);
        self.filled = tail;
        let spans = split(&buf[..cut], last);
        let block = Block {
            buf,
            len: cut,
            base: self.base,
            first_index: self.next_index,
            spans,
            last,
        };
        self.next_index += block.spans.len() as u64;
        self.base += cut as u64;
        block
    }
}

impl<R: Read> Iterator for Splitter<R> {
    type Item = SplitEvent;

    fn next(&mut self) -> Option<SplitEvent> {
        if let Some(ev) = self.pending.take() {
            return Some(ev);
        }
        if self.done {
            return None;
        }
        let mut target = self.block_bytes;
        loop {
            self.fill(target);
            if let Some((offset, index, seen)) = self.skipping {
                // Drop everything up to the next boundary (keep a tail that may hold the
                // start of a separator line cut by the read).
                match first_boundary(&self.buf[..self.filled], 1) {
                    Some(b) => {
                        self.skipping = None;
                        self.discard(b);
                        return Some(SplitEvent::TooLarge {
                            offset,
                            index,
                            bytes: seen + b as u64,
                        });
                    }
                    None if self.eof => {
                        self.skipping = None;
                        self.done = true;
                        let n = self.filled as u64;
                        self.discard(self.filled);
                        return Some(SplitEvent::TooLarge {
                            offset,
                            index,
                            bytes: seen + n,
                        });
                    }
                    None => {
                        let drop = self.filled - 1024.min(self.filled);
                        self.discard(drop);
                        self.skipping = Some((offset, index, seen + drop as u64));
                        target = self.block_bytes;
                        continue;
                    }
                }
            }
            if self.eof {
                self.done = true;
                if self.filled == 0 {
                    return self.pending.take();
                }
                let block = self.cut(self.filled, true);
                return Some(SplitEvent::Block(block));
            }
            match last_boundary(&self.buf[..self.filled]) {
                Some(b) if b > 0 => return Some(SplitEvent::Block(self.cut(b, false))),
                _ if self.filled >= self.max_message_bytes => {
                    // One message bigger than the limit: skip it.
                    let offset = self.base;
                    let index = self.next_index;
                    self.next_index += 1;
                    self.skipping = Some((offset, index, 0));
                    continue;
                }
                _ => {
                    // One message bigger than the block: grow, doubling (each step searches
                    // the whole buffer for a boundary again: 1 MiB steps made a 60 MB message
                    // cost 1.5x the time of 8 MiB steps; doubling keeps it linear).
                    let grow = self.block_bytes.max(self.filled);
                    target = (self.filled + grow).min(self.max_message_bytes);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8] = b"From a@x.com Thu Aug 22 12:36:23 2002\nSubject: one\n\nbody\nFrom the desk of\n>From a@x Thu Aug 22 12:36:23 2002\n\nFrom b@y.com Fri Aug 23 10:00:00 2002\nSubject: two\n\nsecond\n";

    #[test]
    fn splits_only_at_real_separators() {
        let spans = split(M, true);
        assert_eq!(spans.len(), 2);
        let first = &M[spans[0].content..spans[0].end];
        assert!(first.starts_with(b"Subject: one"));
        assert!(
            first.ends_with(b"2002\n"),
            "{:?}",
            String::from_utf8_lossy(first)
        );
        let second = &M[spans[1].content..spans[1].end];
        assert_eq!(second, b"Subject: two\n\nsecond\n");
    }

    #[test]
    fn mh_annotations_before_the_first_separator_are_not_part_of_the_message() {
        let m = b"Replied: Thu, 22 Aug 2002 18:26:25 +0700\nForwarded: x\nFrom a@x Thu Aug 22 12:36:23 2002\nSubject: 1\n\nb\n\nFrom a@x Thu Aug 22 12:36:23 2002\nSubject: 2\n\nc\n";
        let spans = split(m, true);
        assert_eq!(spans.len(), 2);
        assert!(m[spans[0].start..].starts_with(b"From a@x"));
        assert!(m[spans[0].content..spans[0].end].starts_with(b"Subject: 1\n"));
        assert_eq!(&m[spans[1].content..spans[1].end], b"Subject: 2\n\nc\n");
        // The streaming splitter cuts the same messages.
        let blocks: Vec<_> = Splitter::new(&m[..], Vec::new(), 4096, 1 << 20).collect();
        match &blocks[..] {
            [SplitEvent::Block(b)] => assert_eq!(b.spans, spans),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn crlf() {
        let m = b"From a@x Thu Aug 22 12:36:23 2002\r\nSubject: 1\r\n\r\nb\r\n\r\nFrom a@x Thu Aug 22 12:36:23 2002\r\nSubject: 2\r\n\r\nc\r\n";
        let spans = split(m, true);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            &m[spans[0].content..spans[0].end],
            b"Subject: 1\r\n\r\nb\r\n"
        );
    }

    /// `n` messages whose subject is their number, message `i` with a body of `i * step` bytes.
    fn numbered_mbox(n: usize, step: usize) -> Vec<u8> {
        let mut mbox = Vec::new();
        for i in 0..n {
            mbox.extend_from_slice(
                format!(
                    "From a@x Thu Aug 22 12:36:23 2002\nSubject: {i}\n\n{}\n\n",
                    "x".repeat(i * step)
                )
                .as_bytes(),
            );
        }
        mbox
    }

    #[test]
    fn splitter_blocks_are_whole_messages_and_indices_continue() {
        let mbox = numbered_mbox(500, 7);
        let sp = Splitter::new(
            std::io::Cursor::new(mbox.clone()),
            Vec::new(),
            4096,
            1 << 20,
        );
        let mut n = 0u64;
        let mut subjects = Vec::new();
        for ev in sp {
            let SplitEvent::Block(b) = ev else {
                panic!("{ev:?}")
            };
            assert_eq!(b.first_index, n + 1);
            for s in &b.spans {
                assert_eq!(&mbox[b.base as usize + s.start..][..5], b"From ");
                let msg = &b.data()[s.content..s.end];
                subjects.push(
                    String::from_utf8_lossy(&msg[9..msg.iter().position(|&c| c == b'\n').unwrap()])
                        .into_owned(),
                );
            }
            n += b.spans.len() as u64;
        }
        assert_eq!(n, 500);
        assert_eq!(
            subjects,
            (0..500).map(|i| i.to_string()).collect::<Vec<_>>()
        );
    }

    /// A reader that returns a few bytes at a time and is interrupted now and then, as pipes
    /// and decoders may: the splitter reads on until the block is full or the stream ends.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        calls: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf
                .len()
                .min(self.data.len() - self.pos)
                .min(1 + self.calls % 13);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn short_and_interrupted_reads_give_the_same_blocks_as_one_read() {
        let mbox = numbered_mbox(300, 11);
        let messages = |sp: &mut dyn Iterator<Item = SplitEvent>| -> Vec<(u64, Vec<u8>)> {
            sp.flat_map(|ev| {
                let SplitEvent::Block(b) = ev else {
                    panic!("{ev:?}")
                };
                (b.spans.iter().enumerate())
                    .map(|(i, s)| {
                        let index = b.first_index + i as u64;
                        (index, b.data()[s.start..s.end].to_vec())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
        };
        let whole = messages(&mut Splitter::new(&mbox[..], Vec::new(), 4096, 1 << 20));
        let trickle = Trickle {
            data: mbox.clone(),
            pos: 0,
            calls: 0,
        };
        let trickled = messages(&mut Splitter::new(trickle, Vec::new(), 4096, 1 << 20));
        assert_eq!(whole.len(), 300);
        assert_eq!(trickled, whole);
    }

    #[test]
    fn too_large_message_is_skipped_and_the_next_is_read() {
        let mut mbox = b"From a@x Thu Aug 22 12:36:23 2002\nSubject: big\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'y', 50_000));
        mbox.extend_from_slice(b"\n\nFrom a@x Thu Aug 22 12:36:23 2002\nSubject: small\n\nok\n");
        let evs: Vec<_> =
            Splitter::new(std::io::Cursor::new(mbox), Vec::new(), 4096, 8192).collect();
        assert!(
            matches!(
                evs[0],
                SplitEvent::TooLarge {
                    offset: 0,
                    index: 1,
                    ..
                }
            ),
            "{evs:?}"
        );
        let SplitEvent::Block(b) = &evs[1] else {
            panic!()
        };
        assert_eq!(b.first_index, 2);
        assert_eq!(b.spans.len(), 1);
        assert!(b.data()[b.spans[0].content..].starts_with(b"Subject: small"));
    }

    #[test]
    fn large_message_within_limit_grows_the_buffer() {
        let mut mbox = b"From a@x Thu Aug 22 12:36:23 2002\nSubject: big\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'y', 50_000));
        mbox.extend_from_slice(b"\n\nFrom a@x Thu Aug 22 12:36:23 2002\nSubject: small\n\nok\n");
        let blocks: Vec<_> = Splitter::new(std::io::Cursor::new(mbox), Vec::new(), 4096, 1 << 20)
            .map(|e| match e {
                SplitEvent::Block(b) => b.spans.len(),
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(blocks.iter().sum::<usize>(), 2);
    }
}
