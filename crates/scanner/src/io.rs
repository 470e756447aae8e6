//! Safe output: every file leakaudit writes goes to a temporary file in the same folder,
//! is flushed and synced, then renamed over the target, so a crash never leaves half a file.
//! Files are created with mode 0600 because most of them hold addresses.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// A file being written atomically (mode 0600): the content goes to a temporary file in the
/// same folder, made visible under its name by [`AtomicFile::commit`] only. Dropped without a
/// commit, nothing appears. For outputs streamed while a scan runs (findings, problems).
pub struct AtomicFile {
    target: std::path::PathBuf,
    inner: Inner,
}

enum Inner {
    Temp(BufWriter<Writeback>),
    // A device or a fifo (`-o /dev/null`, `-o /dev/stdout`, a named pipe) is written in
    // place: renaming a temporary file over it would replace the device node itself (as
    // root, /dev/null becomes a regular file for the whole machine).
    InPlace(BufWriter<fs::File>),
}

impl AtomicFile {
    /// Starts writing `path` (its folder is created when missing).
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        if let Ok(meta) = fs::metadata(path) {
            if !meta.is_file() && !meta.is_dir() {
                let f = fs::OpenOptions::new().write(true).open(path)?;
                return Ok(AtomicFile {
                    target: path.to_path_buf(),
                    inner: Inner::InPlace(BufWriter::new(f)),
                });
            }
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Folders we create for outputs that hold addresses are private (0700).
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        // NamedTempFile is created 0600 on Unix; persist() renames it into place.
        let tmp = tempfile::Builder::new()
            .prefix(".leakaudit-")
            .tempfile_in(dir)?;
        Ok(AtomicFile {
            target: path.to_path_buf(),
            inner: Inner::Temp(BufWriter::new(Writeback { tmp, unsynced: 0 })),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> io::Result<()> {
        match self.inner {
            Inner::InPlace(mut w) => w.flush(),
            Inner::Temp(w) => {
                let tmp = w.into_inner().map_err(|e| e.into_error())?.tmp;
                tmp.as_file().sync_all()?;
                tmp.persist(&self.target).map_err(|e| e.error)?;
                Ok(())
            }
        }
    }
}

/// The temporary file, with the disk writes of what was written started every
/// [`Writeback::EVERY`] bytes, so that the commit's sync waits for the last part only (a
/// 7 MB output synced at the end was ~4% of a scan's time on a virtual disk).
struct Writeback {
    tmp: tempfile::NamedTempFile,
    /// Bytes written since writeback was last started.
    unsynced: usize,
}

impl Writeback {
    const EVERY: usize = 1 << 20;
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.unsynced += n;
        if self.unsynced >= Writeback::EVERY {
            self.unsynced = 0;
            start_writeback(self.tmp.as_file());
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Starts writing the file's dirty pages to disk without waiting (a hint: an error is left
/// to the final sync, which reports it).
#[cfg(target_os = "linux")]
fn start_writeback(f: &fs::File) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid open descriptor (borrowed for the call); the call only schedules I/O.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &fs::File) {}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Temp(w) => w.write(buf),
            Inner::InPlace(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Temp(w) => w.write_all(buf),
            Inner::InPlace(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Temp(w) => w.flush(),
            Inner::InPlace(w) => w.flush(),
        }
    }
}

/// Writes `path` atomically with mode 0600, the content produced by `fill`.
pub fn write_atomic<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let mut f = AtomicFile::create(path)?;
    fill(&mut f)?;
    f.commit()
}

/// Writes bytes atomically with mode 0600.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Writes `value` as one JSON line, serialised straight into `w` (a finding of a
/// 1,000,000-address message is ~100 MB of JSON, which a line string would hold whole).
pub fn write_json_line<T: serde::Serialize + ?Sized>(
    w: &mut impl Write,
    value: &T,
) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_0600_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        write_bytes_atomic(&p, b"one").unwrap();
        write_bytes_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Past the writeback interval (disk writes started while writing) the file is whole.
    #[test]
    fn large_outputs_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("records.jsonl");
        let line: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut f = AtomicFile::create(&p).unwrap();
        let mut expected = Vec::new();
        for i in 0..9000 {
            let chunk = &line[..(i * 7) % line.len()];
            f.write_all(chunk).unwrap();
            expected.extend_from_slice(chunk);
        }
        assert!(expected.len() > 3 * Writeback::EVERY);
        f.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), expected);
    }

    #[test]
    fn devices_are_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        write_bytes_atomic(Path::new("/dev/null"), b"discarded").unwrap();
        let ft = fs::metadata("/dev/null").unwrap().file_type();
        assert!(ft.is_char_device(), "/dev/null must stay a device");
    }

    #[test]
    fn uncommitted_atomic_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("problems.jsonl");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"whole").unwrap();
        assert!(!p.exists(), "visible only after commit");
        f.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"whole");
    }
}
