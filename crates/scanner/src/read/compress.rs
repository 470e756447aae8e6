//! Transparent decompression, recognised by magic bytes (never by file name).

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Recognises the compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Wraps `inner` in the decoder its first bytes call for. Multi-member gzip (as written by
/// `cat a.gz b.gz` or pigz) is read to the end; zstd is decoded in streaming mode, so neither
/// needs more memory than its window.
pub fn decoded<R: Read + Send + 'static>(
    inner: R,
) -> io::Result<(Box<dyn Read + Send>, Compression)> {
    let mut buffered = BufReader::with_capacity(256 * 1024, inner);
    let kind = Compression::sniff(buffered.fill_buf()?);
    let reader: Box<dyn Read + Send> = match kind {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok((reader, kind))
}

/// Counts the bytes read from the stream as stored (compressed), for progress against the
/// size on disk.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// [`decoded`], plus a counter of the bytes consumed from `inner` (compressed bytes for a
/// compressed stream; read ahead by at most the decoder's 256 KiB buffer).
pub fn decoded_counted<R: Read + Send + 'static>(
    inner: R,
) -> io::Result<(Box<dyn Read + Send>, Compression, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let (reader, kind) = decoded(Counted {
        inner,
        count: Arc::clone(&count),
    })?;
    Ok((reader, kind, count))
}
